"""The JSON error format of API.md, and the middleware that makes every failure
under /v1 use it.

Handlers raise `ApiError`; aiohttp's own 404/405/413 and any unexpected exception
are turned into the same shape, so a client never has to parse text/plain or an
HTML traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from live.store.errors import StoreUnavailable

log = logging.getLogger("live.api")


def error_response(status: int, code: str, message: str, param: str | None = None) -> web.Response:
    """`{"error": {"code", "message", "param"}}` with `status`; usable by any route
    (WHIP, HLS) that wants to answer errors the way the API does."""
    return web.json_response(
        {"error": {"code": code, "message": message, "param": param}}, status=status
    )


class ApiError(Exception):
    """Raise from a handler or middleware to answer with an API error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        response = error_response(self.status, self.code, self.message, self.param)
        response.headers.update(self.headers)
        return response


def invalid(param: str, message: str) -> ApiError:
    """400 `invalid_parameter_value` naming the offending parameter."""
    return ApiError(400, "invalid_parameter_value", message, param)


def missing(param: str) -> ApiError:
    """400 `parameter_missing`."""
    return ApiError(400, "parameter_missing", f"Missing required parameter: {param}", param)


# aiohttp raises these itself (routing, body size); API.md's codes where it has one.
_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("invalid_parameter_value", "Bad request"),
    404: ("not_found", "No such route"),
    405: ("method_not_allowed", "Method not allowed on this route"),
    413: ("payload_too_large", "Request body too large"),
}


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, (exc.reason.lower().replace(" ", "_"), exc.reason))
    if exc.status == 404:
        message = f"No route {request.method} {request.path}"
    elif exc.status == 405:
        message = f"Method {request.method} not allowed on {request.path}"
    response = error_response(exc.status, code, message)
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost /v1 middleware: every error leaves as API.md's JSON."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are not errors
            raise
        return _from_http_exception(exc, request)
    except StoreUnavailable as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        response = error_response(
            503, "unavailable", "The server's state is unreachable for a moment; retry shortly"
        )
        response.headers["Retry-After"] = "2"
        return response
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Internal server error")
