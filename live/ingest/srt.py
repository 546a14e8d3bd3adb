"""The SRT ingest server: asyncio UDP plumbing around the sans-I/O SRT listener.

One UDP socket serves every caller. Each time it is readable, every datagram
waiting in it (up to a bound) goes into `SrtListener` with the loop's clock before
anything is acted on: asyncio's datagram transport reads one per loop pass, which
lets a delivery deadline fire between a backlog's datagrams and give up a packet
whose retransmission is already waiting in the socket. What the listener wants
sent is sent, and one timer (rescheduled to its earliest deadline) drives ACKs,
NAKs, TSBPD delivery and timeouts. A conclusion handshake becomes a decision here,
before any session exists: Stream ID mode, stream key, passphrase, then the
manager's one-publisher rule; a refusal is a handshake rejection code, so a refused
caller never holds a half-open session. Delivered MPEG-TS goes through a
per-connection `TsDemuxer` into the Publisher.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
from typing import Any

from live.attempts import peer_address
from live.broadcast.manager import PublishRefused, StreamManager
from live.broadcast.publisher import Publisher
from live.ingest.mpegts import MediaItem, TsDemuxer
from live.limits import LimitHits
from live.media.packet import TrackInfo
from live.protocols.srt import (
    REJ_BAD_MODE,
    REJ_BADSECRET,
    REJ_CONFLICT,
    REJ_FORBIDDEN,
    REJ_OVERLOAD,
    ConnectionClosed,
    ConnectionRequested,
    DataReceived,
    HandshakeRefused,
    ListenerConfig,
    SrtListener,
)

log = logging.getLogger(__name__)

_REFUSAL_CODES = {
    "unknown_key": REJ_FORBIDDEN,
    "banned": REJ_FORBIDDEN,
    "busy": REJ_CONFLICT,
    "limit": REJ_OVERLOAD,  # the server is at a limit
    "rate_limited": REJ_OVERLOAD,  # too many failed attempts: back off
}
_END_REASONS = {
    "shutdown": "publisher_disconnected",
    "timeout": "timeout",
    "closed": "publisher_disconnected",
}
_DEMUX_DRAIN_S = 5.0
_SOCKET_BUFFER_BYTES = 8 * 1024 * 1024
# Timer wake-ups are coalesced: TSBPD delivery, ACKs and NAKs due within this much
# of each other are handled in one go (a packet's delivery time would otherwise
# wake the loop for every packet).
_TIMER_GRANULARITY_S = 0.002
# Datagrams read per wake-up before the loop gets a turn (1,000 is ~1.3 MB of media).
_MAX_DATAGRAMS_PER_WAKE = 1000


def redacted_stream_id(stream_id: str, stream_key: str | None) -> str:
    """The stream id as it may appear in a log: the key in it is a secret that lets
    anyone who reads the log publish (a wrong key stays hidden too: it is often a
    right key with a typo)."""
    if not stream_key:
        return stream_id
    return stream_id.replace(stream_key, "[key]")


class SrtIngestServer:
    def __init__(
        self,
        manager: StreamManager,
        host: str,
        port: int,
        *,
        latency_s: float = 0.120,
        idle_timeout_s: float = 5.0,
        max_handshakes: int = 200,
        limit_hits: LimitHits | None = None,
    ) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.listener = SrtListener(
            ListenerConfig(
                latency=latency_s, idle_timeout=idle_timeout_s, max_handshakes=max_handshakes
            )
        )
        self.sessions: dict[int, _SrtSession] = {}
        self.limit_hits = limit_hits or LimitHits()
        self.totals: collections.Counter[str] = collections.Counter()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._last_wake = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        # Room for bursts while the loop is busy elsewhere: what overflows here is
        # lost and must be retransmitted (the kernel caps it at net.core.rmem_max).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER_BYTES)
        sock.setblocking(False)
        sock.bind((self.host, self.port))
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._read_ready)
        self.port = sock.getsockname()[1]
        return self.port

    async def close(self) -> None:
        for handle in list(self.sessions):
            self.listener.close(handle, self._now())
        self._pump()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_DEMUX_DRAIN_S + 1)
        if self._timer is not None:
            self._timer.cancel()
        sock, self._sock = self._sock, None
        if sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(sock.fileno())
            sock.close()

    def stats(self) -> dict[str, int]:
        """Counters for /metrics: listener-wide, plus packets of every connection."""
        listener = self.listener.stats
        out: dict[str, int] = {
            "datagrams_malformed": listener.malformed,
            "datagrams_stray": listener.stray,
            "handshakes_accepted": listener.accepted,
            "handshakes_rejected": listener.rejected,
        }
        out.update(self.listener.stats.counters)
        out.update(self.totals)
        for connection in self.listener.connections.values():
            for name, value in connection.counts().items():
                out[name] = out.get(name, 0) + value
        for session in self.sessions.values():
            for name, value in session.demux_counts().items():
                out[name] = out.get(name, 0) + value
        return out

    # -- datagrams and time --------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        receive = self.listener.receive_datagram
        for _ in range(_MAX_DATAGRAMS_PER_WAKE):
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP unreachable reported on a later read
                log.debug("SRT socket error: %s", exc)
                break
            receive(data, addr[:2], self._now())
        self._pump()

    def _send(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """Send now or not at all: SRT retransmits what matters, and a control
        packet that waited in a queue would be stale anyway."""
        if self._sock is None:
            return
        try:
            self._sock.sendto(datagram, addr)
        except OSError as exc:  # a full send buffer (EAGAIN) included
            self.totals["datagrams_unsent"] += 1
            log.debug("SRT send to %s failed: %s", addr, exc)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._last_wake = now = self._now()
        self.listener.handle_timer(now)
        self._pump()

    def _pump(self) -> None:
        listener = self.listener
        while True:
            datagrams = listener.datagrams_to_send()
            events = listener.events()
            if not datagrams and not events:
                break
            for datagram, addr in datagrams:
                self._send(datagram, addr)
            for event in events:
                if isinstance(event, DataReceived):
                    session = self.sessions.get(event.handle)
                    if session is not None:
                        session.feed(event.data)
                elif isinstance(event, ConnectionRequested):
                    self._spawn(self._decide(event))
                elif isinstance(event, ConnectionClosed):
                    self._closed(event)
                elif isinstance(event, HandshakeRefused):
                    self.limit_hits.hit(
                        "srt_max_handshakes",
                        f"SRT caller {event.peer[0]}:{event.peer[1]} refused: "
                        f"{event.waiting} handshakes are waiting already",
                    )
        self._schedule()

    def _schedule(self) -> None:
        deadline = self.listener.get_timer()
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_at = None
            return
        deadline = max(deadline, self._last_wake + _TIMER_GRANULARITY_S)
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(deadline, self._on_timer)
        self._timer_at = deadline

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sessions --------------------------------------------------------------------------

    async def _decide(self, event: ConnectionRequested) -> None:
        handle, listener = event.handle, self.listener
        remote = peer_address(event.peer[0], event.peer[1])
        try:
            code, publisher, session = await self._authorise(event, remote)
        except Exception:
            log.exception("SRT connection from %s: deciding failed", remote)
            code, publisher, session = REJ_FORBIDDEN, None, None
        if code or publisher is None or session is None:
            log.info(
                "SRT caller %s (stream id %r) rejected with %d",
                remote, redacted_stream_id(event.stream_id, event.stream_key), code,
            )  # fmt: skip
            listener.reject(handle, code or REJ_FORBIDDEN, self._now())
            self._pump()
            return
        if not listener.accept(handle, self._now()):  # the caller gave up meanwhile
            await publisher.end("publisher_disconnected")
            return
        session.publisher = publisher
        self.sessions[handle] = session
        session.start()
        self._pump()

    async def _authorise(
        self, event: ConnectionRequested, remote: str
    ) -> tuple[int, Publisher | None, _SrtSession | None]:
        if event.mode != "publish":
            return REJ_BAD_MODE, None, None
        manager = self.manager
        try:
            livestream = await manager.authorise(
                event.stream_key, protocol="srt", remote_addr=remote
            )
            code = self.listener.verify_passphrase(event.handle, livestream.srt_passphrase)
            if code:
                if code == REJ_BADSECRET:  # a wrong (or missing) passphrase: a guess
                    manager.secret_failed(remote)
                return code, None, None
            session = _SrtSession(self, event.handle, remote)
            publisher = await manager.begin_publish(
                event.stream_key,
                protocol="srt",
                remote_addr=remote,
                stop=session.stop,
                livestream=livestream,
            )
        except PublishRefused as refusal:
            return _REFUSAL_CODES.get(refusal.reason, REJ_FORBIDDEN), None, None
        return 0, publisher, session

    def _closed(self, event: ConnectionClosed) -> None:
        session = self.sessions.pop(event.handle, None)
        if session is not None:
            self._spawn(session.finish(_END_REASONS.get(event.reason, "error")))

    def close_connection(self, handle: int) -> None:
        self.listener.close(handle, self._now())
        assert self._loop is not None
        self._loop.call_soon(self._pump)


class _SrtSession:
    """One accepted SRT caller: its demuxer and its Publisher."""

    def __init__(self, server: SrtIngestServer, handle: int, remote: str) -> None:
        self.server = server
        self.handle = handle
        self.remote = remote
        self.publisher: Publisher | None = None
        self.stopped: str | None = None
        self.error: str | None = None
        assert server._loop is not None
        self.demuxer = TsDemuxer(
            server._loop, self._on_items, self._on_demux_done, name=f"srt-ts-{handle}"
        )

    def start(self) -> None:
        self.demuxer.start()

    def feed(self, data: bytes) -> None:
        self.demuxer.feed(data)

    def demux_counts(self) -> dict[str, int]:
        """What the demuxer could not pass on: bytes it had no room for, packets
        damaged in transit, and the frames skipped until the next keyframe."""
        demuxer = self.demuxer
        return {
            "ts_bytes_dropped": demuxer.dropped_bytes,
            "ts_packets_corrupt": demuxer.corrupt_packets,
            "ts_frames_skipped": demuxer.skipped_frames,
        }

    def _on_items(self, items: list[MediaItem]) -> None:
        publisher = self.publisher
        if publisher is None:
            return
        for item in items:
            if isinstance(item, TrackInfo):
                publisher.set_track(item)
            else:
                publisher.push(item)

    def _on_demux_done(self, error: str | None) -> None:
        if error and self.stopped is None:
            log.warning("SRT stream from %s is not readable MPEG-TS: %s", self.remote, error)
            self.error = error
            self.server.close_connection(self.handle)

    def stop(self, reason: str, message: str = "") -> None:
        """Called by the manager (ban, delete, takeover) or the Publisher (`message`:
        over its bitrate limit, an error): close the connection now."""
        self.stopped = reason
        if message:
            self.error = message
        self.server.close_connection(self.handle)

    async def finish(self, reason: str) -> None:
        self.demuxer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.demuxer.done.wait(), _DEMUX_DRAIN_S)
        self.server.totals.update(self.demux_counts())
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await publisher.end("error" if self.error else reason)
