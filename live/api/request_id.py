"""X-Request-Id on every response, so a user's report can be matched to the logs.

Installed on the root app, so it covers /v1, playback, WHIP and plain 404s alike.
"""

from __future__ import annotations

import logging
import re
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from live.api.errors import error_response

log = logging.getLogger("live.http")

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)

# An id given by a proxy or client is kept when it is a plain token; anything else
# (too long, spaces, control characters) could pollute logs, so a fresh one is used.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if _SANE_ID.fullmatch(incoming):
        return incoming
    return f"req_{secrets.token_hex(10)}"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id (`request[REQUEST_ID]`) and put it on the response,
    also on errors raised past every other middleware."""
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    except Exception:
        log.exception("unhandled error in %s %s [%s]", request.method, request.path, request_id)
        response = error_response(500, "internal_error", "Internal server error")
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


async def request_id_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """For `app.on_response_prepare`: covers responses a handler prepares itself
    (streaming), which are already sent when the middleware sees them."""
    request_id = request.get(REQUEST_ID)
    if request_id and REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = request_id
