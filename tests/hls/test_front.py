"""The front of the HTTP port (`live/hls/front.py`), byte for byte over real sockets.

A `/live` request of a live stream is answered by the front itself (its responses
carry no `Server` header: aiohttp's all do, which tells the two apart); anything else
hands the connection to aiohttp, which keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import uvloop
from aiohttp import web
from hls_testing import PB, add_parts, feed, make_stream, make_window, part_bytes
from waiting import eventually

from live.hls import HlsRegistry, HlsWindow, setup_hls_routes
from live.hls.front import FrontRunner, FrontServer, LeanRequest
from live.hls.responses import Answer, ResponseHead

MEDIA = f"/live/{PB}/source"


def on_both_loops(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on asyncio's loop and on uvloop's (which `live serve` runs on,
    and whose transports differ)."""

    @pytest.mark.parametrize("loop_factory", LOOPS, ids=["asyncio", "uvloop"])
    @functools.wraps(test)
    def run(loop_factory: Callable[[], asyncio.AbstractEventLoop], **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(test(**kwargs))

    params = [*inspect.signature(test).parameters.values()]
    params.append(inspect.Parameter("loop_factory", inspect.Parameter.POSITIONAL_OR_KEYWORD))
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return run


LOOPS = [asyncio.new_event_loop, uvloop.new_event_loop]


@dataclass
class Front:
    port: int
    window: HlsWindow
    server: FrontServer
    runner: FrontRunner
    seen: list[tuple[str, str | None, int]]  # (raw path, remote, bytes) per request hook call


@contextlib.asynccontextmanager
async def front(**runner_kwargs: object) -> AsyncIterator[Front]:
    window = make_window(td=1)
    feed(window, 2)
    window.start_segment()
    add_parts(window, 2)  # parts 10 and 11 of segment 2; part 12 is hinted
    registry = HlsRegistry()
    registry.register(make_stream(window))
    seen: list[tuple[str, str | None, int]] = []
    app = web.Application()

    async def other(request: web.Request) -> web.Response:
        return web.Response(text=f"app {request.method} {request.path}")

    app.router.add_route("*", "/other", other)
    handlers = setup_hls_routes(
        app,
        registry,
        on_request=lambda request, target, size: seen.append((target.kind, request.remote, size)),
    )
    runner = FrontRunner(app, service=handlers, handler_cancellation=True, **runner_kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    assert isinstance(runner.server, FrontServer)
    try:
        yield Front(port, window, runner.server, runner, seen)
    finally:
        await runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One response: status line, headers (lower-cased names), body by Content-Length."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
    status, *lines = head[:-4].split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 5) if length else b""
    return status, headers, body


def get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: t", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


@on_both_loops
async def test_a_part_is_answered_by_the_front_byte_for_byte() -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/part-10.m4s"))
        status, headers, body = await read_response(reader)
        assert status == "HTTP/1.1 200 OK"
        assert body == part_bytes(10)
        assert "server" not in headers  # the front, not aiohttp
        assert headers["content-length"] == str(len(part_bytes(10)))
        assert headers["content-type"] == "video/mp4"
        assert headers["cache-control"] == "public, max-age=3600, immutable"
        assert headers["access-control-allow-origin"] == "*"
        assert headers["date"].endswith(" GMT")
        assert f.seen == [("part", "127.0.0.1", len(body))]
        assert f.server.lean_connections == 1
        writer.close()


@on_both_loops
async def test_keep_alive_and_pipelined_requests_are_answered_in_order() -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/part-10.m4s"))
        assert (await read_response(reader))[2] == part_bytes(10)
        # three requests in one write, the last one split over two more
        writer.write(get(f"{MEDIA}/part-11.m4s") + get(f"{MEDIA}/seg-0.m4s") + b"GET /li")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(f"ve/{PB}/source/init-0.mp4 HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        bodies = [(await read_response(reader))[2] for _ in range(3)]
        assert bodies == [
            part_bytes(11),
            b"".join(part_bytes(n) for n in range(5)),  # a segment: its parts, in order
            b"ftyp-moov-0",
        ]
        writer.close()


@on_both_loops
async def test_a_head_byte_at_a_time() -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        for byte in get(f"{MEDIA}/part-10.m4s"):
            writer.write(bytes([byte]))
            await writer.drain()
        assert (await read_response(reader))[2] == part_bytes(10)
        writer.close()


@on_both_loops
async def test_head_gives_the_length_without_a_body() -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/part-10.m4s", method="HEAD") + get(f"{MEDIA}/part-11.m4s"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"Content-Length: %d\r\n" % len(part_bytes(10)) in head
        # the next bytes are the next response, not a body
        status, _, body = await read_response(reader)
        assert (status, body) == ("HTTP/1.1 200 OK", part_bytes(11))
        assert [size for _, _, size in f.seen] == [0, len(part_bytes(11))]
        writer.close()


@on_both_loops
async def test_a_held_request_is_answered_when_its_part_comes_and_the_next_waits() -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/part-12.m4s") + get(f"{MEDIA}/part-10.m4s"))
        await eventually(lambda: f.window.waiter_count == 1)
        assert not reader.at_eof() and len(reader._buffer) == 0  # nothing answered yet
        add_parts(f.window, 1)  # part 12
        assert (await read_response(reader))[2] == part_bytes(12)
        assert (await read_response(reader))[2] == part_bytes(10)
        writer.close()


@on_both_loops
async def test_a_client_gone_while_held_leaves_no_waiter() -> None:
    async with front() as f:
        _, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/index.m3u8?_HLS_msn=2&_HLS_part=4"))
        await eventually(lambda: f.window.waiter_count == 1)
        writer.close()
        await eventually(lambda: f.window.waiter_count == 0 and f.server.lean_connections == 0)
        add_parts(f.window, 3)  # what it waited for: nobody is answered, nothing breaks
        assert f.seen == []


@on_both_loops
async def test_other_requests_hand_the_connection_to_the_application() -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/part-10.m4s"))
        assert "server" not in (await read_response(reader))[1]
        writer.write(get("/other") + get(f"{MEDIA}/part-11.m4s"))
        status, headers, body = await read_response(reader)
        assert (status, body) == ("HTTP/1.1 200 OK", b"app GET /other")
        assert "aiohttp" in headers["server"]
        # aiohttp keeps the connection: /live goes through its route from now on
        status, headers, body = await read_response(reader)
        assert body == part_bytes(11) and "aiohttp" in headers["server"]
        assert f.server.lean_connections == 0
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get(f"{MEDIA}/part-10.m4s", "Content-Length: 3", method="POST") + b"abc", "405"),
        (get(f"{MEDIA}/part-10.m4s", "Transfer-Encoding: chunked") + b"0\r\n\r\n", "200"),
        (get(f"/live/{PB}/../../other"), "404"),
        (get("/live/pb_nobody/index.m3u8"), "404"),
        (b"GET /live/ HTTP/1.1\r\nHost t\r\n\r\n", "400"),  # no colon: a bad header
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n", "400"),
        (b"GET " + b"/live/x" * 3000 + b" HTTP/1.1\r\n", "400"),  # no end: too long
        (f"GET {MEDIA}/part-10.m4s HTTP/1.1\nHost: t\n\n".encode(), "400"),  # bare LFs
        (get(f"{MEDIA}/part-10.m4s", "Connection: Upgrade", "Upgrade: websocket"), "200"),
    ],
    ids=["post-body", "chunked", "dots", "not-live", "header", "tls", "long", "lf", "upgrade"],
)
@on_both_loops
async def test_what_the_front_does_not_answer_gets_aiohttps_answer(
    request_bytes: bytes, status: str
) -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(request_bytes)
        line, headers, _ = await read_response(reader)
        assert line.split()[1] == status
        assert "aiohttp" in headers.get("server", "")
        assert f.server.lean_connections == 0
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [get(f"{MEDIA}/part-10.m4s", version="1.0"), get(f"{MEDIA}/part-10.m4s", "Connection: close")],
    ids=["http-1.0", "connection-close"],
)
@on_both_loops
async def test_a_client_that_asks_for_close_gets_its_answer_then_eof(request_bytes: bytes) -> None:
    async with front() as f:
        reader, writer = await connect(f.port)
        writer.write(request_bytes)
        _, headers, body = await read_response(reader)
        assert body == part_bytes(10) and headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


@on_both_loops
async def test_an_idle_connection_and_an_unfinished_head_are_closed_after_the_timeout() -> None:
    async with front(keepalive_timeout=0.3) as f:
        idle_reader, idle_writer = await connect(f.port)
        idle_writer.write(get(f"{MEDIA}/part-10.m4s"))
        await read_response(idle_reader)
        slow_reader, slow_writer = await connect(f.port)
        slow_writer.write(b"GET /live/")  # and never more
        assert await asyncio.wait_for(idle_reader.read(), 3) == b""
        assert await asyncio.wait_for(slow_reader.read(), 3) == b""
        idle_writer.close()
        slow_writer.close()


@on_both_loops
async def test_a_held_request_outlives_the_idle_timeout() -> None:
    async with front(keepalive_timeout=0.2) as f:
        reader, writer = await connect(f.port)
        writer.write(get(f"{MEDIA}/part-12.m4s"))
        await asyncio.sleep(0.6)  # held for 3 x TD at most: 3 s
        add_parts(f.window, 1)
        assert (await read_response(reader))[2] == part_bytes(12)
        writer.close()


@on_both_loops
async def test_shutdown_closes_the_fronts_connections_and_releases_held_requests() -> None:
    async with front() as f:
        idle_reader, idle_writer = await connect(f.port)
        idle_writer.write(get(f"{MEDIA}/part-10.m4s"))
        await read_response(idle_reader)
        held_reader, held_writer = await connect(f.port)
        held_writer.write(get(f"{MEDIA}/part-12.m4s"))
        await eventually(lambda: f.window.waiter_count == 1)
        await f.runner.cleanup()
        assert f.window.waiter_count == 0
        assert await asyncio.wait_for(idle_reader.read(), 3) == b""
        assert await asyncio.wait_for(held_reader.read(), 3) == b""
        idle_writer.close()
        held_writer.close()


@on_both_loops
async def test_a_reader_that_does_not_read_stops_the_front_reading_its_requests() -> None:
    """Flow control: with the answers piling up unread, the front stops answering
    (and then reading) instead of buffering every answer a client asks for."""
    window = make_window(td=1)
    window.start_segment()
    window.add_part(bytes(1_000_000), 0.2, True)
    registry = HlsRegistry()
    registry.register(make_stream(window))
    app = web.Application()
    runner = FrontRunner(app, service=setup_hls_routes(app, registry))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        reader, writer = await connect(runner.addresses[0][1])
        writer.write(get(f"{MEDIA}/part-0.m4s") * 200)  # 200 MB of answers if all were sent
        await asyncio.sleep(0.5)
        transport = writer.transport
        server_side = next(iter(runner.server._connections))  # type: ignore[union-attr]
        buffered = server_side._transport.get_write_buffer_size()
        assert buffered < 20_000_000, buffered
        for _ in range(200):
            assert len((await read_response(reader))[2]) == 1_000_000
        transport.close()
    finally:
        await runner.cleanup()


class _FailingService:
    """Answers `/live/fail` with a handler that raises, `/live/ok` with a 200."""

    def __init__(self, ok: Answer) -> None:
        self.ok = ok

    def start(self, request: LeanRequest) -> Any:
        async def fail() -> Answer:
            raise RuntimeError("a bug in a handler")

        async def ok() -> Answer:
            return self.ok

        return {"/live/fail": fail, "/live/ok": ok}.get(request.raw_path, lambda: None)()

    def finished(self, request: LeanRequest, answer: Answer, sent: int) -> None:
        pass


@on_both_loops
async def test_a_handler_that_fails_gets_500_and_its_connection_closed_only() -> None:
    ok = Answer(200, ResponseHead.of([("Content-Type", "text/plain")]), b"fine")
    runner = FrontRunner(web.Application(), service=_FailingService(ok))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        other_reader, other_writer = await connect(port)
        reader, writer = await connect(port)
        writer.write(get("/live/fail") + get("/live/ok"))
        status, headers, _ = await read_response(reader)
        assert (status, headers["connection"]) == ("HTTP/1.1 500 Internal Server Error", "close")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        other_writer.write(get("/live/ok"))
        assert (await read_response(other_reader))[2] == b"fine"
        writer.close()
        other_writer.close()
    finally:
        await runner.cleanup()
