"""A runner whose server answers `/live` before the application sees the request.

Every `/live` request of a viewer would otherwise pass aiohttp's router (a URL object
and a decoded path per distinct URL, and every player's URLs are distinct) and the
root application's middlewares (request ids, timing, the cluster's proxy check), which
exist for the API. `HlsHandlers.direct` answers those it can (a stream live on this
node) at once and hands everything else to the application unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from live.hls.handlers import Handler


class DirectRunner(web.AppRunner):
    """`web.AppRunner` with `front` wrapped around the application's request handler."""

    def __init__(
        self, app: web.Application, *, front: Callable[[Handler], Handler], **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._front = front

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.request_handler = self._front(server.request_handler)
        return server
