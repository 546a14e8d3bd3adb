"""The live streams of this node: who may publish, and each session's life.

Every ingest (RTMP, SRT, WHIP) asks `begin_publish` with the stream key and gets a
Publisher or a PublishRefused; from then on it only pushes tracks and packets. The
manager applies the one-publisher-per-key rule with takeover of a silent
publisher, writes the session to the store, starts the consumers (the HLS
packager) and is the LiveControl the API uses to disconnect a publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from live.broadcast.health import IngestHealth
from live.broadcast.hub import Hub
from live.control import LiveSession
from live.hls import HlsRegistry
from live.media.packet import MediaPacket, TrackInfo
from live.packaging.packager import HlsPackager, PackagingSettings
from live.store.base import Store
from live.store.models import Livestream, Session
from live.store.times import utcnow

log = logging.getLogger(__name__)

RefusalReason = Literal["unknown_key", "banned", "busy"]
Takeover = Literal["stale", "always", "never"]


class PublishRefused(Exception):
    """The publish is not allowed; `reason` decides the protocol's answer."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StreamSettings:
    packaging: PackagingSettings = field(default_factory=PackagingSettings)
    publisher_takeover: Takeover = "stale"
    stale_after_s: float = 2.0
    # How long an ended stream's playlist (with ENDLIST) stays up for late viewers.
    ended_playlist_linger_s: float = 60.0


class Publisher:
    """One ingest connection's hold on a live stream."""

    def __init__(
        self,
        broadcast: Broadcast,
        protocol: str,
        remote_addr: str,
        stop: Callable[[str], None],
    ) -> None:
        self.broadcast = broadcast
        self.protocol = protocol
        self.remote_addr = remote_addr
        self._stop = stop
        self.connected_at = time.monotonic()
        self.last_media_at: float | None = None
        self.attached = True
        self._configs: dict[str, TrackInfo] = {}
        self._announced = False
        self.encoder: str | None = None

    @property
    def livestream_id(self) -> str:
        return self.broadcast.livestream.id

    def set_encoder(self, encoder: str | None) -> None:
        if encoder and self.attached:
            self.encoder = encoder[:200]
            self.broadcast.note_encoder(self.encoder)

    def set_track(self, track: TrackInfo) -> None:
        """A track's decoder configuration (also a changed one, mid-stream)."""
        if self._configs.get(track.kind) == track:
            return
        self._configs[track.kind] = track
        if self._announced and self.attached:
            self.broadcast.set_tracks(tuple(self._configs.values()))

    def push(self, packet: MediaPacket) -> None:
        if not self.attached:
            return
        if packet.kind not in self._configs and packet.kind == "video":
            return  # a frame before its configuration cannot be decoded by anyone
        if not self._announced:
            self._announced = True
            self.broadcast.set_tracks(tuple(self._configs.values()))
        self.last_media_at = time.monotonic()
        self.broadcast.push(packet)

    def is_stale(self, after_s: float) -> bool:
        last = self.last_media_at or self.connected_at
        return time.monotonic() - last >= after_s

    def stop(self, reason: str) -> None:
        """Close the ingest connection (it then calls `end`, which finds it detached)."""
        self.attached = False
        with contextlib.suppress(Exception):
            self._stop(reason)

    async def end(self, reason: str = "publisher_disconnected") -> None:
        """The connection is gone; end the session unless another publisher took over."""
        if self.broadcast.publisher is self:
            await self.broadcast.manager.end_session(self.broadcast, reason)
        self.attached = False


class Broadcast:
    """The hub and session of one live stream on this node."""

    def __init__(self, manager: StreamManager, livestream: Livestream) -> None:
        self.manager = manager
        self.livestream = livestream
        self.hub = Hub()
        self.publisher: Publisher | None = None
        self.session: Session | None = None
        self.health = IngestHealth(manager.settings.packaging.segment_target)
        self.tasks: list[asyncio.Task[Any]] = []
        self.packager: HlsPackager | None = None
        self.max_duration_task: asyncio.Task[None] | None = None
        self.warnings: list[str] = []

    def note_encoder(self, encoder: str) -> None:
        if self.session is not None and self.session.encoder != encoder:
            self.session.encoder = encoder
            self.manager.spawn(self.manager.store.update_session(self.session.id, encoder=encoder))

    def set_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        self.hub.set_tracks(tracks)

    def push(self, packet: MediaPacket) -> None:
        self.health.on_packet(packet, time.monotonic())
        self.hub.push(packet)

    def add_warning(self, message: str) -> None:
        if message not in self.health.extra_warnings:
            self.health.extra_warnings.append(message)
            log.warning("stream %s: %s", self.livestream.id, message)

    def media_description(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        now = time.monotonic()
        video_track = next((t for t in self.hub.tracks if t.kind == "video"), None)
        audio_track = next((t for t in self.hub.tracks if t.kind == "audio"), None)
        audio_kbps = self.health.audio_bitrate_kbps(now)
        video = audio = None
        if video_track is not None:
            video = {
                "codec": video_track.codec,
                "width": video_track.width,
                "height": video_track.height,
                "fps": self.health.fps(),
                "bitrate_kbps": round(max(0.0, self.health.bitrate_kbps(now) - audio_kbps)),
            }
        if audio_track is not None:
            audio = {
                "codec": audio_track.codec,
                "sample_rate": audio_track.sample_rate,
                "channels": audio_track.channels,
                "bitrate_kbps": round(audio_kbps),
            }
        return video, audio


class StreamManager:
    """All live streams of this node, and the LiveControl behind the API."""

    def __init__(self, store: Store, hls: HlsRegistry, settings: StreamSettings) -> None:
        self.store = store
        self.hls = hls
        self.settings = settings
        self.broadcasts: dict[str, Broadcast] = {}
        self.refusals: dict[str, int] = {"unknown_key": 0, "banned": 0, "busy": 0}
        self._background: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self.closing = False

    # -- publishing ------------------------------------------------------------------

    async def begin_publish(
        self,
        stream_key: str,
        *,
        protocol: str,
        remote_addr: str,
        stop: Callable[[str], None],
    ) -> Publisher:
        livestream = None
        if stream_key:
            livestream = await self.store.get_livestream_by_stream_key(stream_key)
        if livestream is None:
            raise self._refuse("unknown_key", protocol, remote_addr, "no livestream has this key")
        if livestream.is_banned():
            raise self._refuse("banned", protocol, remote_addr, "this livestream is banned")
        if self.closing:
            raise self._refuse("busy", protocol, remote_addr, "the server is shutting down")
        async with self._lock:
            broadcast = self.broadcasts.get(livestream.id)
            if broadcast is not None and broadcast.publisher is not None:
                current = broadcast.publisher
                if not self._may_take_over(current):
                    raise self._refuse("busy", protocol, remote_addr, "another publisher is live")
                log.info(
                    "stream %s: %s publisher from %s takes over from %s",
                    livestream.id,
                    protocol,
                    remote_addr,
                    current.remote_addr,
                )
                await self._close_session(broadcast, "publisher_disconnected")
                current.stop("publisher_disconnected")
                broadcast.hub.publisher_changed()
            if broadcast is None:
                broadcast = self._start_broadcast(livestream)
            publisher = Publisher(broadcast, protocol, remote_addr, stop)
            broadcast.publisher = publisher
            broadcast.livestream = livestream
            await self._open_session(broadcast, publisher)
        log.info("stream %s: %s publish from %s accepted", livestream.id, protocol, remote_addr)
        return publisher

    def _may_take_over(self, current: Publisher) -> bool:
        rule = self.settings.publisher_takeover
        if rule == "always":
            return True
        if rule == "never":
            return False
        return current.is_stale(self.settings.stale_after_s)

    def _refuse(
        self, reason: RefusalReason, protocol: str, remote_addr: str, message: str
    ) -> PublishRefused:
        self.refusals[reason] += 1
        log.warning("refused %s publish from %s: %s", protocol, remote_addr, reason)
        return PublishRefused(reason, message)

    def _start_broadcast(self, livestream: Livestream) -> Broadcast:
        broadcast = Broadcast(self, livestream)
        packaging = PackagingSettings(
            part_target=self.settings.packaging.part_target,
            segment_target=self.settings.packaging.segment_target,
            window_segments=self.settings.packaging.window_segments,
            latency_mode=livestream.latency_mode,
        )
        packager = HlsPackager(
            broadcast.hub.subscribe("hls", max_packets=3000),
            self.hls,
            livestream.playback_id,
            packaging,
            on_warning=broadcast.add_warning,
        )
        broadcast.packager = packager
        broadcast.tasks.append(asyncio.create_task(packager.run(), name=f"hls-{livestream.id}"))
        self.broadcasts[livestream.id] = broadcast
        return broadcast

    async def _open_session(self, broadcast: Broadcast, publisher: Publisher) -> None:
        session = Session(
            livestream_id=broadcast.livestream.id,
            protocol=publisher.protocol,  # type: ignore[arg-type]
            remote_addr=publisher.remote_addr,
        )
        broadcast.session = session
        broadcast.health = IngestHealth(self.settings.packaging.segment_target)
        await self.store.create_session(session)
        await self.store.set_live(broadcast.livestream.id, True)
        max_duration = broadcast.livestream.max_duration_s
        if max_duration and max_duration > 0:
            broadcast.max_duration_task = asyncio.create_task(
                self._expire(broadcast, session.id, max_duration)
            )

    async def _expire(self, broadcast: Broadcast, session_id: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        if broadcast.session is not None and broadcast.session.id == session_id:
            await self.disconnect(broadcast.livestream.id, "max_duration")

    async def _close_session(self, broadcast: Broadcast, reason: str) -> None:
        """Write the end of the current session (the broadcast may carry on)."""
        session = broadcast.session
        if session is None:
            return
        broadcast.session = None
        if broadcast.max_duration_task is not None:
            broadcast.max_duration_task.cancel()
            broadcast.max_duration_task = None
        video, audio = broadcast.media_description()
        await self.store.end_session(
            session.id,
            ended_at=utcnow(),
            end_reason=reason,
            video=video,
            audio=audio,
            bytes_in=broadcast.health.bytes_in,
            encoder=session.encoder,
        )

    async def end_session(self, broadcast: Broadcast, reason: str) -> None:
        """The publisher is gone for good: end the session and the stream's output."""
        async with self._lock:
            if self.broadcasts.get(broadcast.livestream.id) is not broadcast:
                return
            publisher = broadcast.publisher
            broadcast.publisher = None
            if publisher is not None:
                publisher.attached = False
            await self._close_session(broadcast, reason)
            del self.broadcasts[broadcast.livestream.id]
            broadcast.hub.end(reason)
            with contextlib.suppress(Exception):
                await self.store.set_live(broadcast.livestream.id, False)
        log.info("stream %s: session ended (%s)", broadcast.livestream.id, reason)
        self.spawn(self._retire_output(broadcast))

    async def _retire_output(self, broadcast: Broadcast) -> None:
        """Let the packager write ENDLIST, then take the playlist down after a while."""
        await asyncio.gather(*broadcast.tasks, return_exceptions=True)
        await asyncio.sleep(self.settings.ended_playlist_linger_s)
        packager = broadcast.packager
        if packager is not None and packager.stream is not None:
            current = self.hls.get(broadcast.livestream.playback_id)
            if current is packager.stream:
                self.hls.unregister(broadcast.livestream.playback_id)

    # -- LiveControl -----------------------------------------------------------------

    def current_session(self, livestream_id: str) -> LiveSession | None:
        broadcast = self.broadcasts.get(livestream_id)
        if broadcast is None or broadcast.session is None:
            return None
        session = broadcast.session
        session.video, session.audio = broadcast.media_description()
        session.bytes_in = broadcast.health.bytes_in
        return LiveSession(
            session=session,
            ingest_health=broadcast.health.report(time.monotonic()),
            warnings=broadcast.health.warnings(),
        )

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        broadcast = self.broadcasts.get(livestream_id)
        if broadcast is None or broadcast.publisher is None:
            return False
        publisher = broadcast.publisher
        await self.end_session(broadcast, end_reason)
        publisher.stop(end_reason)
        return True

    # -- life of the process -----------------------------------------------------------

    async def recover(self) -> None:
        """Close what a crashed process left open: sessions and `live` flags."""
        for session in await self.store.list_open_sessions():
            await self.store.end_session(session.id, ended_at=utcnow(), end_reason="error")
        for _ in range(10_000):  # bounded: each round clears up to 100 flags
            items, _total = await self.store.list_livestreams(page=1, page_size=100, status="live")
            if not items:
                break
            for livestream in items:
                await self.store.set_live(livestream.id, False)

    async def shutdown(self) -> None:
        """End every session (`server_shutdown`) and let the packagers finish."""
        self.closing = True
        tasks = [t for b in self.broadcasts.values() for t in b.tasks]
        for livestream_id in list(self.broadcasts):
            await self.disconnect(livestream_id, "server_shutdown")
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in list(self._background):
            task.cancel()

    def spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
