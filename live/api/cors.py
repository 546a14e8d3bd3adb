"""CORS on /v1 for the configured origins (off when none are configured).

Preflights are answered before authentication: browsers send them without the API
key. Playback paths have their own, always-open CORS (live/hls/responses.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from live.api.errors import error_middleware
from live.uploads.tus import REQUEST_HEADERS as TUS_REQUEST_HEADERS
from live.uploads.tus import RESPONSE_HEADERS as TUS_RESPONSE_HEADERS

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
# Browsers upload with tus (tus-js-client): its headers go both ways.
ALLOW_HEADERS = ", ".join(
    ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-Id",
     *TUS_REQUEST_HEADERS]
)  # fmt: skip
EXPOSE_HEADERS = ", ".join(
    ["X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
     "Retry-After", "Idempotent-Replayed", *TUS_RESPONSE_HEADERS]
)  # fmt: skip
MAX_AGE_S = 600


def parse_origins(text: str) -> frozenset[str]:
    """`cors_origins` setting: comma-separated origins, or "*"."""
    return frozenset(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def cors_middleware(origins: Iterable[str]) -> Middleware:
    allowed = frozenset(origins)
    any_origin = "*" in allowed

    def allow_origin(origin: str | None) -> str | None:
        if not origin:
            return None
        if any_origin:
            return "*"
        return origin if origin in allowed else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = allow_origin(request.headers.get("Origin"))
        if origin is None:
            return await handler(request)
        vary = {"Vary": "Origin"} if origin != "*" else {}
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": str(MAX_AGE_S),
                    **vary,
                },
            )
        response = await error_middleware(request, handler)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers.update(vary)
        return response

    return middleware
