"""API key authentication and scopes.

A key comes as `X-API-Key: KEY` or `Authorization: Bearer KEY`. Admin keys may do
anything; read keys may only use safe methods and never see secrets (see
serialize.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from live.api.errors import ApiError
from live.api.state import API_KEY, STORE
from live.attempts import AttemptGuard
from live.store.models import ApiKey

SAFE_METHODS = frozenset({"GET", "HEAD"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="live"'}
# Readable without a key (API.md): the API's own description, as most APIs publish it.
PUBLIC_PATHS = frozenset({"/v1/openapi.json"})


def presented_key(request: web.Request) -> str | None:
    """The key the client sent, X-API-Key first, or None."""
    key = request.headers.get("X-API-Key", "").strip()
    if key:
        return key
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without a valid key, 403 for a read key on a non-GET. Runs before routing
    errors are reported, so an anonymous client learns nothing about routes."""
    plaintext = presented_key(request)
    if plaintext is None and request.method in SAFE_METHODS and request.path in PUBLIC_PATHS:
        return await handler(request)
    if plaintext is None:
        raise ApiError(
            401,
            "unauthorized",
            "Missing API key: send X-API-Key: KEY or Authorization: Bearer KEY",
            headers=_CHALLENGE,
        )
    key = await request.app[STORE].verify_api_key(plaintext)
    if key is None:
        raise ApiError(401, "unauthorized", "Invalid API key", headers=_CHALLENGE)
    request[API_KEY] = key
    if key.scope != "admin" and request.method not in SAFE_METHODS:
        raise ApiError(403, "forbidden", f"A {key.scope} key may only read (GET)")
    return await handler(request)


def failed_key_middleware(guard: AttemptGuard, throttled: Counter[tuple[str, str]]) -> Middleware:
    """Before auth: an address that sent wrong API keys waits before its next key is
    looked at, then is refused (429 `rate_limited`, Retry-After) for a while, as
    publishers with wrong stream keys are (`live/attempts.py`). Counted in
    `throttled` as ("api", "slowed" | "refused")."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if presented_key(request) is None:  # nothing to guess with
            return await handler(request)
        address = request.remote or ""
        verdict = guard.check(address)
        if not verdict.refused and verdict.delay_s > 0:
            throttled[("api", "slowed")] += 1
            await asyncio.sleep(verdict.delay_s)
            verdict = guard.check(address)
        if verdict.refused:
            throttled[("api", "refused")] += 1
            retry_after = verdict.retry_after_whole_s
            raise ApiError(
                429,
                "rate_limited",
                f"Too many wrong API keys from this address; retry after {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        try:
            return await handler(request)
        except ApiError as exc:
            if exc.status == 401:
                guard.failed(address)
            raise

    return middleware


def api_key(request: web.Request) -> ApiKey:
    """The authenticated key of this request."""
    return request[API_KEY]


def can_see_secrets(request: web.Request) -> bool:
    return api_key(request).scope == "admin"


def require_admin(request: web.Request) -> None:
    """For routes that even reading needs an admin key for (API keys)."""
    if api_key(request).scope != "admin":
        raise ApiError(403, "forbidden", "This route needs an admin key")
