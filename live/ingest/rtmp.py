"""The RTMP/RTMPS ingest server: asyncio plumbing around the sans-I/O RTMP core.

One protocol object per TCP connection feeds received bytes into
`RtmpServerConnection`, acts on its events (authorise the key with the StreamManager,
hand tracks and frames to the Publisher) and writes what the core wants sent. Reading
pauses while an event waits and while our own writes are backed up, so a publisher can
never make us buffer more than one read.

A connection must get from its first byte to a publish request (handshake, connect,
createStream, publish: milliseconds for a real encoder) within `handshake_timeout_s`
however it trickles its bytes, so a slow or stuck client never holds a connection for
long; after that, `idle_timeout_s` of silence ends it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from fractions import Fraction

from live.attempts import peer_address
from live.broadcast.manager import PublishRefused, StreamManager
from live.broadcast.publisher import Publisher
from live.ingest.low_water import COALESCE_S, LowWaterMark
from live.ingest.tracks import audio_track, video_track
from live.limits import LimitHits
from live.media.packet import MediaPacket
from live.protocols.rtmp import (
    AudioConfig,
    AudioFrame,
    MetadataReceived,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RtmpEvent,
    RtmpServerConnection,
    VideoConfig,
    VideoFrame,
)

log = logging.getLogger(__name__)

_MS = Fraction(1, 1000)
_ASYNC_EVENTS = (PublishRequested, PublishEnded, ProtocolError)
# After a refusal, how long the client may take to read it and hang up before the
# connection is cut.
_REFUSAL_LINGER_S = 2.0
# The core's names for its limits, and the settings that set them (/metrics labels).
_LIMIT_SETTINGS = {"message_size": "rtmp_max_message_bytes", "chunk_size": "rtmp_max_chunk_size"}


class RtmpIngestServer:
    def __init__(
        self,
        manager: StreamManager,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout_s: float = 30.0,
        handshake_timeout_s: float = 10.0,
        read_coalesce_s: float = COALESCE_S,
        max_message_bytes: int = 8 * 1024 * 1024,
        max_chunk_size: int = 65536,
        limit_hits: LimitHits | None = None,
    ) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.protocol = "rtmps" if ssl_context else "rtmp"
        self.ssl_context = ssl_context
        self.idle_timeout_s = idle_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.read_coalesce_s = read_coalesce_s  # see live/ingest/low_water.py
        self.max_message_bytes = max_message_bytes
        self.max_chunk_size = max_chunk_size
        self.limit_hits = limit_hits or LimitHits()
        self._server: asyncio.Server | None = None
        self._sessions: set[_RtmpSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _RtmpSession(self), self.host, self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions)
        for session in sessions:
            session.mark_stopped("server_shutdown")
        if sessions:
            await asyncio.wait(
                [asyncio.ensure_future(s.finish("server_shutdown")) for s in sessions],
                timeout=5,
            )
        for session in sessions:
            session.abort()


class _RtmpSession(asyncio.Protocol):
    """One RTMP connection: the core, and (once publishing) its Publisher.

    A protocol, not a reader task: `data_received` feeds the core and hands frames on
    in the same callback, which saves a future, a task wake-up and a buffer copy per
    read (a large share of a publisher's CPU at one read per frame). Only events that
    must wait (the key lookup on publish, ending a session) leave the callback: reading
    pauses while they run, so events are still handled strictly in order.
    """

    def __init__(self, server: RtmpIngestServer) -> None:
        self.server = server
        self.core = RtmpServerConnection(
            app="live",
            max_message_size=server.max_message_bytes,
            max_chunk_size=server.max_chunk_size,
        )
        self.publisher: Publisher | None = None
        self.stopped_reason: str | None = None
        self.remote = "?:0"
        self.last_data_at = self.opened_at = time.monotonic()
        self.publish_requested = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._watchdog: asyncio.TimerHandle | None = None
        self._pending: asyncio.Task[None] | None = None  # an event that must wait
        self._backlog: collections.deque[RtmpEvent] = collections.deque()
        self._reading_paused = False
        self._writing_paused = False
        self.low_water = LowWaterMark(None, self.last_data_at, self._loop.call_later, 0.0)

    # ------------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports do not subclass asyncio's.
        self._transport = transport  # type: ignore[assignment]
        if transport.get_extra_info("sslcontext") is None:  # TLS records: not bytes we parse
            self.low_water = LowWaterMark(
                transport.get_extra_info("socket"),
                time.monotonic(),
                self._loop.call_later,
                self.server.read_coalesce_s,
            )
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.remote = peer_address(peer[0], peer[1])
        self.server._sessions.add(self)
        self._arm_watchdog(self.server.handshake_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self.stopped_reason is not None or self.core.closed:
            return
        now = self.last_data_at = time.monotonic()
        self.core.receive_data(data)
        # While an event waits, reading is paused, but a trailing TLS record may still
        # come in: its events queue behind the waiting one.
        self._backlog.extend(self.core.events())
        if self._pending is None:
            self._advance()
        self.low_water.after_read(self.core.bytes_wanted(), now, self.core.bytes_received)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._sessions.discard(self)
        self.low_water.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.stopped_reason is None:
            self.stopped_reason = "publisher_disconnected"
        self._spawn(self.finish("publisher_disconnected"))

    def pause_writing(self) -> None:
        # A client that does not read our replies cannot make us buffer: stop reading.
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        pause = self._writing_paused or self._pending is not None
        if pause and not self._reading_paused:
            transport.pause_reading()
        elif not pause and self._reading_paused:
            transport.resume_reading()
        self._reading_paused = pause

    def mark_stopped(self, reason: str) -> None:
        """Ignore whatever the connection sends from now on."""
        if self.stopped_reason is None:
            self.stopped_reason = reason

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _spawn(self, work) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self.server._tasks.add(task)
        task.add_done_callback(self.server._tasks.discard)
        return task

    # ------------------------------------------------------------------ events

    def _advance(self) -> None:
        """Act on queued events in order, inside the read callback, until one must
        wait; that one continues in a task with reading paused."""
        try:
            while self._backlog and self.stopped_reason is None:
                if isinstance(self._backlog[0], _ASYNC_EVENTS):
                    self._pending = self._spawn(self._wait_on(self._backlog.popleft()))
                    self._update_reading()
                    break
                self._on_media_event(self._backlog.popleft())
        except Exception:
            log.exception("RTMP connection from %s failed", self.remote)
            self._fail("error")
            return
        self._flush()

    async def _wait_on(self, event: RtmpEvent) -> None:
        try:
            await self._on_event(event)
        except Exception:
            log.exception("RTMP connection from %s failed", self.remote)
            self._fail("error")
            return
        finally:
            self._pending = None
        self._flush()
        if self.stopped_reason is not None or self.core.closed:
            # Also when the connection dropped while the key was being checked: the
            # publisher it was given must end, or the stream would stay live.
            await self.finish(self.stopped_reason or "publisher_disconnected")
            self._close()
            return
        self._advance()
        self._update_reading()

    def _fail(self, reason: str) -> None:
        self.stopped_reason = reason
        self._spawn(self.finish(reason))
        self.abort()

    def _close(self) -> None:
        """Close after writing what the core still has to say (a refusal, say).

        Only our sending side is closed at once: closing the socket while a publisher
        is still sending makes the kernel answer its next bytes with a reset, which
        can destroy the refusal before the publisher has read it. What it sends
        meanwhile is discarded (the core is closed); it hangs up once it has read
        why, or is cut off after `_REFUSAL_LINGER_S`."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not transport.can_write_eof():  # TLS: no half-close
            transport.close()
            return
        transport.write_eof()
        if self._reading_paused:
            transport.resume_reading()
            self._reading_paused = False
        self._loop.call_later(_REFUSAL_LINGER_S, self.abort)

    def _arm_watchdog(self, delay: float) -> None:
        self._watchdog = self._loop.call_later(delay + 0.01, self._check_idle)

    def _check_idle(self) -> None:
        """Drop a connection that has not asked to publish `handshake_timeout_s` after
        opening, or that has sent nothing for `idle_timeout_s` since (end reason
        `timeout`). One timer per connection, not one per read."""
        if self.publish_requested:
            remaining = self.last_data_at + self.server.idle_timeout_s - time.monotonic()
        else:
            remaining = self.opened_at + self.server.handshake_timeout_s - time.monotonic()
            if remaining <= 0:
                self.server.limit_hits.hit(
                    "rtmp_handshake_timeout_s",
                    f"RTMP connection from {self.remote} dropped: no publish within "
                    f"{self.server.handshake_timeout_s:g} s of connecting",
                    level=logging.INFO,
                )
        if remaining <= 0:
            self._fail("timeout")
            return
        self._arm_watchdog(min(remaining, 1.0))

    def _flush(self) -> None:
        out = self.core.data_to_send()
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(out)

    def _on_media_event(self, event) -> None:
        """Frames, configurations and metadata: handled inside the read callback."""
        publisher = self.publisher
        if publisher is None:
            return
        if isinstance(event, VideoFrame):
            publisher.push(
                MediaPacket(
                    "video",
                    event.timestamp,
                    event.timestamp + event.composition_time,
                    event.data,
                    event.keyframe,
                    _MS,
                )
            )
        elif isinstance(event, AudioFrame):
            publisher.push(
                MediaPacket("audio", event.timestamp, event.timestamp, event.data, True, _MS)
            )
        elif isinstance(event, VideoConfig):
            track = video_track(event.codec, event.config)
            if track is not None:
                publisher.set_track(track)
        elif isinstance(event, AudioConfig):
            track = audio_track(event.codec, event.config)
            if track is not None:
                publisher.set_track(track)
        elif isinstance(event, MetadataReceived):
            encoder = event.values.get("encoder")
            publisher.set_encoder(str(encoder) if encoder else None)

    async def _on_event(self, event) -> None:
        """Events that wait on the manager: publish, unpublish, a protocol error."""
        if isinstance(event, PublishRequested):
            await self._on_publish(event)
        elif isinstance(event, PublishEnded):
            await self.finish("publisher_disconnected")
        elif isinstance(event, ProtocolError):
            if event.limit is not None:
                self.server.limit_hits.hit(
                    _LIMIT_SETTINGS.get(event.limit, event.limit),
                    f"RTMP connection from {self.remote} refused: {event.reason}",
                )
            else:
                log.warning("RTMP protocol error from %s: %s", self.remote, event.reason)
            self.stopped_reason = "error"
            await self.finish("error")

    async def _on_publish(self, event: PublishRequested) -> None:
        self.publish_requested = True
        if self.publisher is not None:
            self.core.reject_publish("NetStream.Publish.BadName", "already publishing")
            return
        try:
            self.publisher = await self.server.manager.begin_publish(
                event.stream_key,
                protocol=self.server.protocol,
                remote_addr=self.remote,
                stop=self._stop,
            )
        except PublishRefused as refusal:
            code = (
                "NetStream.Publish.Rejected"
                if refusal.reason == "limit"
                else ("NetStream.Publish.BadName")
            )
            self.core.reject_publish(code, str(refusal))
            self._flush()
            self.stopped_reason = refusal.reason
            return
        self.core.accept_publish()

    def _stop(self, reason: str, message: str = "") -> None:
        """Called by the manager (ban, delete, takeover): drop the connection now.
        With a `message` (over the bitrate limit), the publisher is told why first,
        and the session ends with `reason`."""
        self.stopped_reason = reason
        if not message:
            self.abort()
            return
        self.core.reject_publish("NetStream.Publish.Rejected", message)
        self._flush()
        self._spawn(self.finish(reason))
        self._close()

    async def finish(self, reason: str) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await publisher.end(reason)
