"""A change begun through the API is carried to its end when its client hangs up
(the server cancels handlers then: `handler_cancellation=True`, as `live serve`)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import URLS, RecordingControl

from live.api import build_api, request_id_middleware
from live.api.to_the_end import ChangesUnderWay
from live.store import SqliteStore


class SlowControl(RecordingControl):
    """Kicks a publisher only once `go_on` is set, as a node that takes a moment."""

    def __init__(self) -> None:
        super().__init__()
        self.called = asyncio.Event()
        self.go_on = asyncio.Event()

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        self.called.set()
        await self.go_on.wait()
        return await super().disconnect(livestream_id, end_reason)


async def _hang_up_during(url: str, method: str, headers: dict[str, str], control) -> None:
    control.called.clear()
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(session.request(method, url, headers=headers))
        await asyncio.wait_for(control.called.wait(), 5)
        request.cancel()  # the client goes away while the change is half done
        await asyncio.gather(request, return_exceptions=True)


async def test_a_ban_and_a_delete_finish_when_the_client_hangs_up(
    store: SqliteStore, admin: dict[str, str]
) -> None:
    control = SlowControl()
    cancelled: list[str] = []

    @web.middleware
    async def notice_cancelled(request: web.Request, handler):  # the server saw it go
        try:
            return await handler(request)
        except asyncio.CancelledError:
            cancelled.append(request.method)
            raise

    root = web.Application(middlewares=[notice_cancelled, request_id_middleware])
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS))
    banned = await store.create_livestream(name="abusive")
    deleted = await store.create_livestream(name="old")
    async with TestServer(root, handler_cancellation=True) as server:
        base = str(server.make_url("/v1/livestreams"))
        await _hang_up_during(f"{base}/{banned.id}/ban", "PATCH", admin, control)
        await _hang_up_during(f"{base}/{deleted.id}", "DELETE", admin, control)
        for _ in range(100):  # both handlers cancelled, their changes half done
            if len(cancelled) == 2:
                break
            await asyncio.sleep(0.05)
        assert cancelled == ["PATCH", "DELETE"]
        control.go_on.set()
        for _ in range(100):
            if len(control.disconnects) == 2 and await store.get_livestream(deleted.id) is None:
                break
            await asyncio.sleep(0.05)
    assert control.disconnects == [(banned.id, "banned"), (deleted.id, "deleted")]
    assert (await store.get_livestream(banned.id)).is_banned()
    assert await store.get_livestream(deleted.id) is None


async def test_a_change_that_fails_after_its_client_has_gone_is_logged(caplog) -> None:
    started, go_on, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def change(request: web.Request) -> web.Response:
        started.set()
        try:
            await go_on.wait()
            raise RuntimeError("the store went away")
        finally:
            finished.set()

    read_cancelled = asyncio.Event()

    async def read(request: web.Request) -> web.Response:
        started.set()
        try:
            await go_on.wait()
        except asyncio.CancelledError:
            read_cancelled.set()
            raise
        finished.set()
        return web.Response()

    changes = ChangesUnderWay()
    request_cancelled = asyncio.Event()

    @web.middleware
    async def notice_cancelled(request: web.Request, handler):  # the server saw it go
        try:
            return await handler(request)
        except asyncio.CancelledError:
            request_cancelled.set()
            raise

    app = web.Application(middlewares=[notice_cancelled, changes.middleware])
    app.router.add_post("/change", change)
    app.router.add_get("/read", read)
    async with TestServer(app, handler_cancellation=True) as server:
        for path, method in (("/change", "POST"), ("/read", "GET")):
            for event in (started, go_on, finished, request_cancelled):
                event.clear()
            async with aiohttp.ClientSession() as session:
                request = asyncio.create_task(session.request(method, server.make_url(path)))
                await asyncio.wait_for(started.wait(), 5)
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)
            await asyncio.wait_for(request_cancelled.wait(), 5)
            if method == "POST":  # the server's shutdown waits for it
                waiting = asyncio.create_task(changes.wait())
                await asyncio.sleep(0.05)
                assert not waiting.done()
                go_on.set()
                await asyncio.wait_for(waiting, 5)
                assert finished.is_set()
            else:  # a read is simply cancelled with its client
                await asyncio.wait_for(read_cancelled.wait(), 5)
                go_on.set()
                assert not finished.is_set()
    assert "POST /change failed after its client had gone" in caplog.text
    assert "the store went away" in caplog.text
