"""The REST API of API.md (`/v1`), and the error and request-id plumbing that the
other HTTP routes (WHIP, HLS) share with it."""

from live.api.app import build_api
from live.api.errors import ApiError, error_response
from live.api.request_id import REQUEST_ID, request_id_middleware, request_id_on_prepare

__all__ = [
    "REQUEST_ID",
    "ApiError",
    "build_api",
    "error_response",
    "request_id_middleware",
    "request_id_on_prepare",
]
