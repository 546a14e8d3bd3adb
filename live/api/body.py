"""JSON request bodies: read once, size-limited, parsed to an object.

The middleware reads the body before the handler runs so that every route gets the
same 400/413 answers, and keeps the raw bytes (`RAW_BODY`) for later middlewares
that must fingerprint a request (Idempotency-Key).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from live.api.errors import ApiError
from live.api.route_marks import body_is_streamed
from live.api.state import JSON_BODY, RAW_BODY

# The default of `api_max_body_bytes`: room for a poster sent as a data URL.
MAX_BODY_BYTES = 10 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"Request body over {limit} bytes")


async def read_limited(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refusing more than `limit` bytes without buffering them: an
    announced length over it is refused before a byte is read, a chunked body as
    soon as it passes it.

    Reads the stream directly because the root app's `client_max_size` is not
    ours to set."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """An empty body is `{}` (every body here has optional forms); anything but a
    JSON object is 400 `invalid_json`."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_json", f"Body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "Body must be a JSON object")
    return value


def json_body_middleware(limit: int = MAX_BODY_BYTES) -> Middleware:
    """Parse the body of POST/PUT/PATCH to routes that exist (a 404 stays a 404),
    refusing one over `limit` bytes with 413. Upload routes stream their own."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method in BODY_METHODS
            and request.match_info.http_exception is None
            and not body_is_streamed(request)
        ):
            raw = await read_limited(request, limit)
            request[RAW_BODY] = raw
            request[JSON_BODY] = parse_json_object(raw)
        return await handler(request)

    return middleware


def json_body(request: web.Request) -> dict[str, Any]:
    """The parsed body ({} when empty or not a body method)."""
    return request.get(JSON_BODY) or {}
