"""`Idempotency-Key` on POST: a repeat of the same request within 24 h gets the first
answer again (with `Idempotent-Replayed: true`) instead of acting twice.

Answers are kept per API key, fingerprinted by method, path and raw body: the same
key with a different request is a client bug and gets 422
`idempotency_key_reused`. Concurrent repeats wait for the first to finish. Server
errors (5xx) are not kept, so a retry after one acts again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from live.api.errors import ApiError, error_middleware, invalid
from live.api.route_marks import body_is_streamed
from live.api.state import API_KEY, RAW_BODY
from live.store.base import Store
from live.store.models import IdempotentAnswer
from live.store.times import utcnow

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
PURGE_EVERY = timedelta(minutes=10)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _fingerprint(request: web.Request) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.rel_url.path_qs}\n".encode())
    digest.update(request.get(RAW_BODY, b""))
    return digest.hexdigest()


def idempotency_middleware(store: Store) -> Middleware:
    locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}
    last_purge = [utcnow()]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or body_is_streamed(request):
            return await handler(request)
        if not _KEY.fullmatch(key):
            raise invalid(HEADER, f"{HEADER} must be 1 to 255 visible ASCII characters")
        slot = (request[API_KEY].id, key)
        lock, users = locks.setdefault(slot, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                return await _answer(request, handler, store, slot, last_purge)
        finally:
            users[0] -= 1
            if users[0] == 0:
                locks.pop(slot, None)

    return middleware


async def _answer(
    request: web.Request,
    handler: Handler,
    store: Store,
    slot: tuple[str, str],
    last_purge: list,
) -> web.StreamResponse:
    now = utcnow()
    fingerprint = _fingerprint(request)
    found = await store.get_idempotent_answer(*slot, not_before=now - KEEP_FOR)
    if found is not None:
        if found.fingerprint != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                f"This {HEADER} was used for a different request",
                HEADER,
            )
        return web.Response(
            status=found.status,
            body=found.body,
            headers={"Content-Type": found.content_type, "Idempotent-Replayed": "true"},
        )
    response = await error_middleware(request, handler)
    if response.status < 500 and isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
        await store.put_idempotent_answer(
            IdempotentAnswer(
                api_key_id=slot[0],
                key=slot[1],
                fingerprint=fingerprint,
                status=response.status,
                body=body,
                content_type=response.headers.get("Content-Type", "application/json"),
                created_at=now,
            )
        )
    if now - last_purge[0] >= PURGE_EVERY:
        last_purge[0] = now
        await store.purge_idempotent_answers(now - KEEP_FOR)
    return response
