"""Marks a route handler carries to tell the /v1 middlewares it is not a JSON route.

- `streams_body`: the handler reads its body itself, as a stream (uploads): the
  JSON-body middleware neither reads nor limits it (the handler applies its own
  limit, `max_upload_bytes`), and Idempotency-Key does not apply (an answer made
  of headers, such as a tus Location, cannot be replayed from a stored body).
- `unmetered`: a request that is one piece of a larger transfer (a tus PATCH
  chunk) spends no token of the per-key rate limit; the transfer's first request
  does.

Marks are attributes of the handler function, read from the matched route, so a
path that merely looks like an upload route gets no exemption.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

_STREAMS_BODY = "_live_streams_body"
_UNMETERED = "_live_unmetered"

H = TypeVar("H")


def streams_body(handler: H) -> H:
    setattr(handler, _STREAMS_BODY, True)
    return handler


def unmetered(handler: H) -> H:
    setattr(handler, _UNMETERED, True)
    return handler


def _marked(request: web.Request, mark: str) -> bool:
    if request.match_info.http_exception is not None:
        return False
    return bool(getattr(request.match_info.handler, mark, False))


def body_is_streamed(request: web.Request) -> bool:
    return _marked(request, _STREAMS_BODY)


def is_unmetered(request: web.Request) -> bool:
    return _marked(request, _UNMETERED)
