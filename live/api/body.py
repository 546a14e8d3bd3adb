"""JSON request bodies: read once, size-limited, parsed to an object.

The middleware reads the body before the handler runs so that every route gets the
same 400/413 answers, and keeps the raw bytes (`RAW_BODY`) for later middlewares
that must fingerprint a request (Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from live.api.errors import ApiError
from live.api.route_marks import body_is_streamed
from live.api.state import JSON_BODY, RAW_BODY
from live.limits import LimitHits

# The default of `api_max_body_bytes`: room for a poster sent as a data URL.
MAX_BODY_BYTES = 10 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"Request body over {limit} bytes")


def body_timed_out(timeout_s: float) -> ApiError:
    """408 for a body that did not arrive in time; the connection is closed after
    it (aiohttp never reuses one whose body was not read to its end)."""
    return ApiError(
        408,
        "request_timeout",
        f"The request body did not arrive within {timeout_s:g} s",
        headers={"Connection": "close"},
    )


async def read_limited(
    request: web.Request, limit: int = MAX_BODY_BYTES, timeout_s: float | None = None
) -> bytes:
    """The body, refusing more than `limit` bytes without buffering them: an
    announced length over it is refused before a byte is read, a chunked body as
    soon as it passes it. A body still incomplete `timeout_s` after the headers is
    refused with 408, so a client trickling it holds no handler for long.

    Reads the stream directly because the root app's `client_max_size` is not
    ours to set."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.read(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise body_timed_out(timeout_s or 0) from None
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


def json_body_middleware(
    limit: int = MAX_BODY_BYTES,
    timeout_s: float | None = None,
    limit_hits: LimitHits | None = None,
) -> Middleware:
    """Parse the body of POST/PUT/PATCH to routes that exist (a 404 stays a 404),
    refusing one over `limit` bytes with 413, and one not all there `timeout_s`
    after the headers with 408. Upload routes stream their own."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method in BODY_METHODS
            and request.match_info.http_exception is None
            and not body_is_streamed(request)
        ):
            try:
                raw = await read_limited(request, limit, timeout_s)
            except ApiError as error:
                if error.status == 408 and limit_hits is not None:
                    limit_hits.hit(
                        "http_body_timeout_s",
                        f"{request.method} {request.path} from {request.remote}: the body "
                        f"did not arrive within {timeout_s:g} s",
                    )
                raise
            request[RAW_BODY] = raw
            request[JSON_BODY] = parse_json_object(raw)
        return await handler(request)

    return middleware


def json_body(request: web.Request) -> dict[str, Any]:
    """The parsed body ({} when empty or not a body method)."""
    return request.get(JSON_BODY) or {}
