"""A webhook receiver on a loopback port that a test can take down and bring back."""

from __future__ import annotations

import asyncio
import json
import threading

from aiohttp import web


class Receiver:
    """An HTTP endpoint on a fixed loopback port that can go down and come back."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes, str]] = []
        self.secret = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.up()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((json.loads(body), body, request.headers.get("Live-Signature", "")))
        return web.Response(status=204)

    async def _up(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def up(self) -> None:
        self._call(self._up())

    def down(self) -> None:
        self._call(self._down())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self) -> dict[str, dict]:
        """Received events by id (duplicates dropped, as a receiver should)."""
        return {payload["id"]: payload for payload, _, _ in self.requests}
