"""The front of the HTTP port: `/live` requests answered on a lean path, all else
handed to aiohttp.

An LL-HLS viewer makes about ten requests a second, so what one request costs from
the socket to the last byte decides how many viewers a core carries. Through aiohttp
a request builds a parsed message, a payload stream, a request and a response object,
a task when handlers are cancellable, and its headers anew. The front does only what
a `/live` answer needs: httptools parses the request head, `HlsHandlers.start` picks
the answer, and the response goes out as one prebuilt header block plus the body's
immutable `bytes` in a single `writelines`, with no task unless the request is held.

Each connection starts on the front. A request the front does not answer (a method
other than GET or HEAD, a body, an upgrade, a path outside `/live`, a stream not live
on this node, a head httptools refuses) hands the connection, with every byte not yet
answered, to an aiohttp request handler, which keeps it from then on. A player's
connections ask only for `/live` and stay on the front.

The front keeps aiohttp's promises for the connections it holds: HTTP/1.1 keep-alive
(and close for HTTP/1.0 or `Connection: close`), pipelined requests answered in order,
no more reading while a response waits on a slow reader, an idle connection closed
after `keepalive_timeout` (a client that never finishes its head included), and every
connection closed when the server shuts down.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections.abc import Coroutine
from email.utils import formatdate
from typing import Any, Protocol, cast

import httptools
from aiohttp import web
from multidict import CIMultiDict

from live.hls.responses import Answer

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024  # a longer head goes to aiohttp, which answers 431 or 400
MAX_UNREAD_BYTES = 64 * 1024  # pipelined bytes kept while a request is in progress
DEFAULT_IDLE_TIMEOUT_S = 75.0  # aiohttp's default keepalive_timeout
_LEAN_METHODS = frozenset({b"GET", b"HEAD"})
_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    for status in http.HTTPStatus
}
_INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)


class LeanService(Protocol):
    """What the front asks of the `/live` handlers (`HlsHandlers`)."""

    def start(self, request: LeanRequest) -> Coroutine[Any, Any, Answer] | None: ...

    def finished(self, request: LeanRequest, answer: Answer, sent: int) -> None: ...


class LeanRequest:
    """A request the front answers: what the `/live` handlers and hooks read of it."""

    __slots__ = ("headers", "keep_alive", "method", "raw_path", "remote", "transport")

    def __init__(
        self,
        method: str,
        raw_path: str,
        headers: CIMultiDict[str],
        remote: str | None,
        transport: asyncio.Transport,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.headers = headers
        self.remote = remote
        self.transport = transport
        self.keep_alive = keep_alive


class _DateHeader:
    """The Date header line, formatted once a second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self._line


class FrontServer:
    """The protocol factory the sites listen with, in place of aiohttp's `web.Server`
    (which it wraps, for the connections it hands over, and stands in for otherwise)."""

    def __init__(
        self, app_server: web.Server, service: LeanService, *, idle_timeout_s: float
    ) -> None:
        self.app_server = app_server
        self.service = service
        self.date = _DateHeader()
        self.idle_timeout_s = idle_timeout_s
        self._connections: set[FrontConnection] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> FrontConnection:
        return FrontConnection(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app_server, name)

    @property
    def lean_connections(self) -> int:
        return len(self._connections)

    def opened(self, connection: FrontConnection) -> None:
        self._connections.add(connection)
        if self._sweeper is None:
            self._schedule_sweep()

    def closed(self, connection: FrontConnection) -> None:
        self._connections.discard(connection)

    def hand_over(self, transport: asyncio.Transport, unanswered: bytes) -> None:
        """Give the connection to an aiohttp request handler, as if it had just been
        accepted and had sent `unanswered`."""
        handler = self.app_server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if unanswered:
            handler.data_received(unanswered)

    def pre_shutdown(self) -> None:
        for connection in list(self._connections):
            connection.close_when_idle()
        self.app_server.pre_shutdown()

    async def shutdown(self, timeout: float | None = None) -> None:
        for connection in list(self._connections):
            connection.abort()
        self._connections.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        await self.app_server.shutdown(timeout)

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(min(1.0, self.idle_timeout_s), self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle for longer than the timeout: one timer for all,
        rather than one armed and cancelled per request."""
        self._sweeper = None
        if not self._connections:
            return
        deadline = asyncio.get_running_loop().time() - self.idle_timeout_s
        for connection in list(self._connections):
            connection.close_if_idle_since(deadline)
        self._schedule_sweep()


class FrontConnection(asyncio.Protocol):
    """One connection while the front holds it; see the module docstring."""

    def __init__(self, server: FrontServer) -> None:
        self._server = server
        self._service = server.service
        self._transport: asyncio.Transport | None = None
        self._remote: str | None = None
        self._loop = asyncio.get_running_loop()
        self._unread = bytearray()
        self._parser = httptools.HttpRequestParser(self)
        # the head being parsed
        self._url = b""
        self._fields: list[tuple[str, str]] = []
        self._complete = False
        self._keep_alive = True
        # the request in progress, if one is held (its coroutine, and what it waits on)
        self._request: LeanRequest | None = None
        self._held: Coroutine[Any, Any, Answer] | None = None
        self._held_on: asyncio.Future[Any] | None = None
        self._writable = True
        self._reading = True
        self._closing = False  # no further request is read
        self.idle_since = 0.0

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio's)
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._remote = peer[0] if isinstance(peer, tuple) else None
        self.idle_since = self._loop.time()
        self._server.opened(self)

    def data_received(self, data: bytes) -> None:
        self._unread += data
        if self._request is None and self._writable:
            self._answer_unread()
        elif len(self._unread) > MAX_UNREAD_BYTES and self._reading:
            self._reading = False
            self._transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        return None  # close: a client that stops sending has nothing more to ask

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.closed(self)
        self._release()

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        if self._request is None:
            self._answer_unread()

    # ------------------------------------------------------------------ httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_message_complete(self) -> None:
        self._complete = True
        # read now: the parser forgets Connection: close once the message is over
        self._keep_alive = self._parser.should_keep_alive()

    # ------------------------------------------------------------------ requests

    def _answer_unread(self) -> None:
        """Answer the complete requests read so far, in order, until one is held."""
        transport = self._transport
        assert transport is not None
        unread = self._unread
        while self._request is None and self._writable and not self._closing:
            end = unread.find(b"\r\n\r\n")
            if end < 0:
                # A head with bare LF line ends, or one too long: aiohttp's to judge.
                if len(unread) > MAX_HEAD_BYTES or b"\n\n" in unread:
                    self._hand_over()
                return
            request = self._parse(bytes(unread[: end + 4]))
            coroutine = None if request is None else self._service.start(request)
            if coroutine is None:
                self._hand_over()
                return
            del unread[: end + 4]
            self._request = request
            self._run(coroutine)
        if not self._reading and self._request is None and not self._closing:
            self._reading = True
            transport.resume_reading()

    def _parse(self, head: bytes) -> LeanRequest | None:
        """The request `head` is, if it is one the front may answer."""
        self._url = b""
        self._fields = []
        self._complete = False
        parser = self._parser
        try:
            parser.feed_data(head)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            return None
        method = parser.get_method()
        if not self._complete or method not in _LEAN_METHODS:
            return None
        assert self._transport is not None
        return LeanRequest(
            method.decode(),
            self._url.decode("latin-1"),
            CIMultiDict(self._fields),
            self._remote,
            self._transport,
            self._keep_alive,
        )

    def _run(self, coroutine: Coroutine[Any, Any, Answer]) -> None:
        """Step the answer's coroutine: most finish at once, without a task; a held one
        is resumed when the future it waits on is done."""
        try:
            waited_on = coroutine.send(None)
        except StopIteration as done:
            self._respond(done.value)
            return
        except asyncio.CancelledError:  # what it waited on was cancelled: the loop ends
            self._fail()
            return
        except Exception:
            log.exception("/live request failed")
            self._fail()
            return
        if not isinstance(waited_on, asyncio.Future):  # a bare yield: go round the loop
            waited_on = self._loop.create_future()
            waited_on.set_result(None)
        self._held = coroutine
        self._held_on = waited_on
        waited_on.add_done_callback(self._resume)

    def _resume(self, _future: asyncio.Future[Any]) -> None:
        coroutine = self._held
        self._held = self._held_on = None
        if coroutine is None:
            return
        self._run(coroutine)
        if self._request is None and not self._closing:
            self._answer_unread()

    def _respond(self, answer: Answer) -> None:
        request = self._request
        transport = self._transport
        assert request is not None and transport is not None
        self._request = None
        body = answer.body
        size = len(body) if isinstance(body, bytes) else sum(map(len, body))
        head = b"".join(
            (
                _STATUS_LINES.get(answer.status) or f"HTTP/1.1 {answer.status} \r\n".encode(),
                answer.head.lines,
                self._server.date.line(),
                b"Content-Length: %d\r\n" % size,
                b"\r\n" if request.keep_alive else b"Connection: close\r\n\r\n",
            )
        )
        if request.method == "HEAD":
            transport.write(head)
            size = 0
        elif isinstance(body, bytes):
            transport.writelines((head, body))
        else:
            transport.writelines((head, *body))
        self.idle_since = self._loop.time()
        if not request.keep_alive or self._closing:  # the client's wish, or a shutdown
            self._closing = True
            transport.close()
        self._service.finished(request, answer, size)

    def _fail(self) -> None:
        self._request = None
        self._closing = True
        if self._transport is not None:
            self._transport.write(_INTERNAL_ERROR)
            self._transport.close()

    def _hand_over(self) -> None:
        transport = self._transport
        assert transport is not None
        self._closing = True
        self._server.closed(self)
        unanswered = bytes(self._unread)
        self._unread.clear()
        if not self._reading:
            self._reading = True
            transport.resume_reading()
        self._server.hand_over(transport, unanswered)

    def _release(self) -> None:
        """End a held request at once (its holds leave their gates)."""
        coroutine, future = self._held, self._held_on
        self._held = self._held_on = None
        self._request = None
        if future is not None:
            future.remove_done_callback(self._resume)
        if coroutine is not None:
            coroutine.close()

    # ------------------------------------------------------------------ shutting down

    def close_when_idle(self) -> None:
        """Close now if no request is in progress; else after its answer."""
        self._closing = True
        if self._request is None and self._transport is not None:
            self._transport.close()

    def close_if_idle_since(self, deadline: float) -> None:
        if self._request is None and self.idle_since < deadline and self._transport is not None:
            self._closing = True
            self._transport.close()

    def abort(self) -> None:
        self._closing = True
        self._release()
        if self._transport is not None:
            self._transport.close()


class FrontRunner(web.AppRunner):
    """`web.AppRunner` whose sites listen with a `FrontServer` answering `/live` for
    `service` before the application."""

    def __init__(self, app: web.Application, *, service: LeanService, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._service = service
        self._idle_timeout_s = float(kwargs.get("keepalive_timeout", DEFAULT_IDLE_TIMEOUT_S))

    async def _make_server(self) -> web.Server:
        app_server = await super()._make_server()
        front = FrontServer(app_server, self._service, idle_timeout_s=self._idle_timeout_s)
        return front  # type: ignore[return-value]  # it stands in for the server
