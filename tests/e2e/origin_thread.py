"""An HTTP origin for import tests: an aiohttp app on its own event loop in a
thread of the test process, so a synchronous test can run it beside `live serve`."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ThreadedOrigin:
    """Serves `GET /show.mp4` with `_serve` (the subclass's) on a free loopback
    port, from its own thread until `close()`."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_get("/show.mp4", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return self._runner.addresses[0][1]

    def close(self) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
