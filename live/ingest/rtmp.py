"""The RTMP/RTMPS ingest server: asyncio plumbing around the sans-I/O RTMP core.

One task per TCP connection reads bytes into `RtmpServerConnection`, acts on its
events (authorise the key with the StreamManager, hand tracks and frames to the
Publisher) and writes what the core wants sent. Reading is paced by the socket,
so a publisher can never make us buffer more than one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from fractions import Fraction

from live.broadcast.manager import PublishRefused, StreamManager
from live.broadcast.publisher import Publisher
from live.ingest.tracks import audio_track, video_track
from live.media.packet import MediaPacket
from live.protocols.rtmp import (
    AudioConfig,
    AudioFrame,
    MetadataReceived,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RtmpServerConnection,
    VideoConfig,
    VideoFrame,
)

log = logging.getLogger(__name__)

_MS = Fraction(1, 1000)
_READ_SIZE = 65536


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
    ) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.protocol = "rtmps" if ssl_context else "rtmp"
        self.ssl_context = ssl_context
        self.idle_timeout_s = idle_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context, limit=_READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        remote = f"{peer[0]}:{peer[1]}"
        session = _RtmpSession(self, reader, writer, remote)
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            await session.finish("server_shutdown")
            raise
        except Exception:
            log.exception("RTMP connection from %s failed", remote)
            await session.finish("error")
        finally:
            await session.finish("publisher_disconnected")
            writer.transport.abort()
            self._connections.discard(task)


class _RtmpSession:
    """One RTMP connection: the core, and (once publishing) its Publisher."""

    def __init__(self, server: RtmpIngestServer, reader, writer, remote: str) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.remote = remote
        self.core = RtmpServerConnection(app="live")
        self.publisher: Publisher | None = None
        self.stopped_reason: str | None = None
        self.last_data_at = time.monotonic()

    async def run(self) -> None:
        # One watchdog per connection instead of a timeout around every read: a
        # wait_for per read costs a task and a timer each time (a fifth of the CPU
        # of a busy RTMP server).
        watchdog = asyncio.create_task(self._watch_idle())
        try:
            while not self.core.closed and self.stopped_reason is None:
                data = await self.reader.read(_READ_SIZE)
                if not data:
                    return
                self.last_data_at = time.monotonic()
                self.core.receive_data(data)
                for event in self.core.events():
                    await self._on_event(event)
                self._flush()
                await self.writer.drain()
        finally:
            watchdog.cancel()

    async def _watch_idle(self) -> None:
        """Drop a connection that sends nothing: `handshake_timeout_s` before the
        first byte, `idle_timeout_s` after (end reason `timeout`)."""
        limit = self.server.handshake_timeout_s
        while True:
            remaining = self.last_data_at + limit - time.monotonic()
            if remaining <= 0:
                self.stopped_reason = "timeout"
                await self.finish("timeout")
                self.writer.transport.abort()
                return
            await asyncio.sleep(min(remaining, 1.0) + 0.01)
            if self.core.bytes_received:
                limit = self.server.idle_timeout_s

    def _flush(self) -> None:
        out = self.core.data_to_send()
        if out and not self.writer.is_closing():
            self.writer.write(out)

    async def _on_event(self, event) -> None:
        publisher = self.publisher
        if isinstance(event, VideoFrame):
            if publisher is not None:
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
            if publisher is not None:
                publisher.push(
                    MediaPacket("audio", event.timestamp, event.timestamp, event.data, True, _MS)
                )
        elif isinstance(event, VideoConfig):
            track = video_track(event.codec, event.config)
            if publisher is not None and track is not None:
                publisher.set_track(track)
        elif isinstance(event, AudioConfig):
            track = audio_track(event.codec, event.config)
            if publisher is not None and track is not None:
                publisher.set_track(track)
        elif isinstance(event, MetadataReceived):
            if publisher is not None:
                encoder = event.values.get("encoder")
                publisher.set_encoder(str(encoder) if encoder else None)
        elif isinstance(event, PublishRequested):
            await self._on_publish(event)
        elif isinstance(event, PublishEnded):
            await self.finish("publisher_disconnected")
        elif isinstance(event, ProtocolError):
            log.warning("RTMP protocol error from %s: %s", self.remote, event.reason)
            await self.finish("error")

    async def _on_publish(self, event: PublishRequested) -> None:
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
            self.core.reject_publish("NetStream.Publish.BadName", str(refusal))
            self._flush()
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
            self.stopped_reason = refusal.reason
            return
        self.core.accept_publish()

    def _stop(self, reason: str) -> None:
        """Called by the manager (ban, delete, takeover): drop the connection now."""
        self.stopped_reason = reason
        self.writer.transport.abort()

    async def finish(self, reason: str) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await publisher.end(reason)
