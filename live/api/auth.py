"""API key authentication and scopes.

A key comes as `X-API-Key: KEY` or `Authorization: Bearer KEY`. Admin keys may do
anything; read keys may only use safe methods and never see secrets (see
serialize.py).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from live.api.errors import ApiError
from live.api.state import API_KEY, STORE
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


def api_key(request: web.Request) -> ApiKey:
    """The authenticated key of this request."""
    return request[API_KEY]


def can_see_secrets(request: web.Request) -> bool:
    return api_key(request).scope == "admin"


def require_admin(request: web.Request) -> None:
    """For routes that even reading needs an admin key for (API keys)."""
    if api_key(request).scope != "admin":
        raise ApiError(403, "forbidden", "This route needs an admin key")
