"""One live stream on this node: its hub, its current publisher and session."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from live.broadcast.health import IngestHealth
from live.broadcast.hub import Hub
from live.broadcast.publisher import Publisher
from live.media.packet import MediaPacket, TrackInfo
from live.store.models import Livestream, Session

if TYPE_CHECKING:
    from live.packaging.packager import HlsPackager

log = logging.getLogger(__name__)


class BroadcastHost(Protocol):
    """What a Broadcast needs from whoever runs the node's streams (the
    StreamManager), kept small so a test can build a Broadcast with a few lines."""

    async def publisher_gone(self, broadcast: Broadcast, publisher: Publisher, reason: str) -> None:
        """The publisher's connection ended by itself (`reason`: publisher_disconnected,
        timeout, error)."""

    async def note_encoder(self, broadcast: Broadcast, encoder: str) -> None:
        """The publisher named its encoder: store it with the session."""

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine in the background, owned (and cancelled) by the host."""


class Broadcast:
    """Lives from the first publish until the session ends; survives reconnects
    within the reconnect window, so viewers and recordings see one stream."""

    def __init__(self, host: BroadcastHost, livestream: Livestream, segment_target: float) -> None:
        self.host = host
        self.livestream = livestream
        self.segment_target = segment_target
        self.hub = Hub()
        self.publisher: Publisher | None = None
        self.session: Session | None = None
        self.health = IngestHealth(segment_target)
        self.tasks: list[asyncio.Task[Any]] = []
        self.packager: HlsPackager | None = None
        self.timers: dict[str, asyncio.Task[None]] = {}
        self.reconnecting = False
        # When the last publisher's media stopped (None while one is attached): a
        # session that ends in the reconnect window ends here, not at the window's end.
        self.media_ended_at: datetime | None = None
        self.announced_live = False
        # The newest video keyframe, for posters; replaced, never copied.
        self.last_keyframe: MediaPacket | None = None

    def note_encoder(self, encoder: str) -> None:
        if self.session is not None and self.session.encoder != encoder:
            self.session.encoder = encoder
            self.host.spawn(self.host.note_encoder(self, encoder))

    async def publisher_gone(self, publisher: Publisher, reason: str) -> None:
        await self.host.publisher_gone(self, publisher, reason)

    def set_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        if tracks != self.hub.tracks:
            self.last_keyframe = None  # it was coded with the old configuration
        self.hub.set_tracks(tracks)

    def push(self, packet: MediaPacket) -> None:
        if packet.keyframe and packet.kind == "video":
            self.last_keyframe = packet
        self.health.on_packet(packet, time.monotonic())
        self.hub.push(packet)

    def add_warning(self, message: str) -> None:
        if message not in self.health.extra_warnings:
            self.health.extra_warnings.append(message)
            log.warning("stream %s: %s", self.livestream.id, message)

    def latest_keyframe(self) -> tuple[TrackInfo, MediaPacket] | None:
        video = next((t for t in self.hub.tracks if t.kind == "video"), None)
        if video is None or self.last_keyframe is None:
            return None
        return video, self.last_keyframe

    def start_timer(self, name: str, after_s: float, action) -> None:
        """Run `action()` (a coroutine function) after `after_s`, replacing a timer
        of the same name."""
        self.cancel_timer(name)

        async def fire() -> None:
            await asyncio.sleep(after_s)
            self.timers.pop(name, None)
            await action()

        self.timers[name] = asyncio.create_task(fire(), name=f"{name}-{self.livestream.id}")

    def cancel_timer(self, name: str) -> None:
        task = self.timers.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def cancel_timers(self) -> None:
        for name in list(self.timers):
            self.cancel_timer(name)

    def media_description(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The session's `video` and `audio` objects, as measured so far."""
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
