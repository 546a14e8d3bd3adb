"""The live streams of this node: who may publish, and each session's life.

Every ingest (RTMP, SRT, WHIP) asks `begin_publish` with the stream key and gets a
Publisher or a PublishRefused; from then on it only pushes tracks and packets. The
manager applies the one-publisher-per-key rule (with takeover of a silent
publisher), keeps a session open through the reconnect window, writes sessions to
the store, starts the consumers (HLS packager, recorder) and emits the stream's
events. It is also the LiveControl the API uses to disconnect a publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from live.broadcast import events
from live.broadcast.broadcast import Broadcast
from live.broadcast.events import NoStreamEvents, StreamEvents
from live.broadcast.health import IngestHealth
from live.broadcast.publisher import Publisher
from live.control import LiveSession
from live.hls import HlsRegistry
from live.ladder.ladder import Ladder
from live.ladder.plan import DEFAULT_RUNGS, parse_rungs, plan_ladder
from live.media.packet import MediaPacket, TrackInfo
from live.packaging.packager import HlsPackager, PackagingSettings
from live.store.base import Store
from live.store.models import Livestream, Session
from live.store.times import utcnow

log = logging.getLogger(__name__)

RefusalReason = Literal["unknown_key", "banned", "busy"]
Takeover = Literal["stale", "always", "never"]
# A consumer started with each Broadcast, after its packager: it subscribes to the
# hub or taps `broadcast.packager` itself (the recorder stores the packager's parts)
# and runs until its input ends.
ConsumerFactory = Callable[[Broadcast], Coroutine[Any, Any, None] | None]
# Ends a publisher may come back from within the reconnect window.
_RECOVERABLE = ("publisher_disconnected", "timeout", "error")


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
    # `transcode: ladder`: (height, video bits per second) rungs, and the x264 preset.
    ladder_rungs: tuple[tuple[int, int], ...] = tuple(parse_rungs(DEFAULT_RUNGS))
    ladder_preset: str = "veryfast"


class StreamManager:
    """All live streams of this node, and the LiveControl behind the API."""

    def __init__(
        self,
        store: Store,
        hls: HlsRegistry,
        settings: StreamSettings,
        *,
        events: StreamEvents | None = None,
    ) -> None:
        self.store = store
        self.hls = hls
        self.settings = settings
        self.events: StreamEvents = events or NoStreamEvents()
        self.consumers: list[ConsumerFactory] = []
        # The session's viewer figures (peak_viewers, total_views) at its end.
        self.viewer_totals: Callable[[Broadcast], dict[str, int]] | None = None
        # The same figures while the session goes on (read-only), for current_session.
        self.live_viewer_totals: Callable[[Broadcast], dict[str, int]] | None = None
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
            continuing = False
            if broadcast is not None and broadcast.publisher is not None:
                current = broadcast.publisher
                if not self._may_take_over(current):
                    raise self._refuse("busy", protocol, remote_addr, "another publisher is live")
                log.info(
                    "stream %s: %s publisher from %s takes over from %s",
                    livestream.id, protocol, remote_addr, current.remote_addr,
                )
                broadcast.publisher = None
                current.stop("publisher_disconnected")
                await self._emit(events.DISCONNECTED, broadcast)
                continuing = livestream.reconnect_window_s > 0
                if not continuing:
                    await self._close_session(broadcast, "publisher_disconnected")
                broadcast.hub.publisher_changed()
            elif broadcast is not None:  # back within the reconnect window
                continuing = broadcast.session is not None
                broadcast.hub.publisher_changed()
            if broadcast is None:
                broadcast = self._start_broadcast(livestream)
            publisher = Publisher(broadcast, protocol, remote_addr, stop)
            broadcast.publisher = publisher
            broadcast.livestream = livestream
            broadcast.reconnecting = False
            broadcast.cancel_timer("reconnect")
            if not continuing:
                await self._open_session(broadcast, publisher)
        log.info("stream %s: %s publish from %s accepted", livestream.id, protocol, remote_addr)
        await self._emit(events.CONNECTED, broadcast)
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
            on_part=lambda: self._on_part(broadcast),
            ladder=self._ladder_factory(broadcast) if livestream.transcode == "ladder" else None,
        )
        broadcast.packager = packager
        broadcast.tasks.append(asyncio.create_task(packager.run(), name=f"hls-{livestream.id}"))
        for factory in self.consumers:
            coroutine = factory(broadcast)
            if coroutine is not None:
                broadcast.tasks.append(asyncio.create_task(coroutine))
        self.broadcasts[livestream.id] = broadcast
        return broadcast

    def _ladder_factory(self, broadcast: Broadcast) -> Callable[[HlsPackager], Ladder | None]:
        """Lower renditions for a `transcode: ladder` stream, planned from the source
        video once the packager knows it."""

        def make(packager: HlsPackager) -> Ladder | None:
            video = next((t for t in packager.tracks if t.kind == "video"), None)
            if video is None or packager.window is None:
                return None
            rungs = plan_ladder(video.width, video.height, list(self.settings.ladder_rungs))
            if not rungs:
                return None
            log.info("stream %s: ladder %s", broadcast.livestream.id,
                     ", ".join(f"{r.name} {r.bitrate // 1000} kbps" for r in rungs))
            return Ladder(
                rungs,
                source_window=packager.window,
                stream=lambda: packager.stream,
                frame_rate=lambda: packager.rendition.frame_rate if packager.rendition else None,
                on_warning=broadcast.add_warning,
                preset=self.settings.ladder_preset,
            )

        return make

    def _on_part(self, broadcast: Broadcast) -> None:
        if not broadcast.announced_live and broadcast.session is not None:
            broadcast.announced_live = True
            self.spawn(self._emit(events.LIVE, broadcast))

    async def _open_session(self, broadcast: Broadcast, publisher: Publisher) -> None:
        session = Session(
            livestream_id=broadcast.livestream.id,
            protocol=publisher.protocol,  # type: ignore[arg-type]
            remote_addr=publisher.remote_addr,
        )
        broadcast.session = session
        broadcast.announced_live = broadcast.packager is not None and (
            broadcast.packager.parts_produced > 0
        )
        broadcast.health = IngestHealth(self.settings.packaging.segment_target)
        await self.store.create_session(session)
        await self.store.set_live(broadcast.livestream.id, True)
        if broadcast.announced_live:  # a new session on output that is already playing
            self.spawn(self._emit(events.LIVE, broadcast))
        max_duration = broadcast.livestream.max_duration_s
        if max_duration and max_duration > 0:
            session_id = session.id

            async def expire() -> None:
                if broadcast.session is not None and broadcast.session.id == session_id:
                    await self.disconnect(broadcast.livestream.id, "max_duration")

            broadcast.start_timer("max_duration", max_duration, expire)

    async def _close_session(self, broadcast: Broadcast, reason: str) -> None:
        """Write the end of the current session (the broadcast may carry on)."""
        session = broadcast.session
        if session is None:
            return
        broadcast.session = None
        broadcast.cancel_timer("max_duration")
        video, audio = broadcast.media_description()
        ended = await self.store.end_session(
            session.id,
            ended_at=utcnow(),
            end_reason=reason,
            video=video,
            audio=audio,
            bytes_in=broadcast.health.bytes_in,
            encoder=session.encoder,
            **(self.viewer_totals(broadcast) if self.viewer_totals else {}),
        )
        await self._emit(events.IDLE, broadcast, ended or session)

    async def publisher_gone(self, broadcast: Broadcast, publisher: Publisher, reason: str) -> None:
        """The publisher's connection ended by itself: wait for it within the
        reconnect window, or end the session now."""
        async with self._lock:
            if broadcast.publisher is not publisher:
                return
            broadcast.publisher = None
            publisher.attached = False
        await self._emit(events.DISCONNECTED, broadcast)
        window = broadcast.livestream.reconnect_window_s
        if window > 0 and reason in _RECOVERABLE and not self.closing:
            broadcast.reconnecting = True
            log.info("stream %s: publisher left (%s); waiting %d s for it to come back",
                     broadcast.livestream.id, reason, window)

            async def expire() -> None:
                if broadcast.publisher is None:
                    await self.end_session(broadcast, reason)

            broadcast.start_timer("reconnect", window, expire)
            return
        await self.end_session(broadcast, reason)

    async def end_session(self, broadcast: Broadcast, reason: str) -> None:
        """The session is over: end it and the stream's output (ENDLIST)."""
        async with self._lock:
            if self.broadcasts.get(broadcast.livestream.id) is not broadcast:
                return
            del self.broadcasts[broadcast.livestream.id]
            publisher, broadcast.publisher = broadcast.publisher, None
            if publisher is not None:
                publisher.attached = False
            broadcast.reconnecting = False
            broadcast.cancel_timers()
        await self._close_session(broadcast, reason)
        broadcast.hub.end(reason)
        with contextlib.suppress(Exception):
            await self.store.set_live(broadcast.livestream.id, False)
        log.info("stream %s: session ended (%s)", broadcast.livestream.id, reason)
        self.spawn(self._retire_output(broadcast))

    async def _retire_output(self, broadcast: Broadcast) -> None:
        """Let the consumers finish (ENDLIST), then take the playlist down later."""
        await asyncio.gather(*broadcast.tasks, return_exceptions=True)
        await asyncio.sleep(self.settings.ended_playlist_linger_s)
        packager = broadcast.packager
        if packager is not None and packager.stream is not None:
            current = self.hls.get(broadcast.livestream.playback_id)
            if current is packager.stream:
                self.hls.unregister(broadcast.livestream.playback_id)

    async def _emit(
        self, event: str, broadcast: Broadcast, session: Session | None = None
    ) -> None:
        try:
            await self.events.emit(event, broadcast.livestream, session or broadcast.session)
        except Exception:
            log.exception("stream %s: could not record event %s", broadcast.livestream.id, event)

    def latest_keyframe(self, playback_id: str) -> tuple[TrackInfo, MediaPacket] | None:
        """The video track and newest keyframe of the live stream with this playback id."""
        for broadcast in self.broadcasts.values():
            if broadcast.livestream.playback_id == playback_id:
                return broadcast.latest_keyframe()
        return None

    # -- LiveControl -----------------------------------------------------------------

    def current_session(self, livestream_id: str) -> LiveSession | None:
        broadcast = self.broadcasts.get(livestream_id)
        if broadcast is None or broadcast.session is None:
            return None
        session = broadcast.session
        session.video, session.audio = broadcast.media_description()
        session.bytes_in = broadcast.health.bytes_in
        if self.live_viewer_totals is not None:
            for name, value in self.live_viewer_totals(broadcast).items():
                setattr(session, name, value)
        return LiveSession(
            session=session,
            reconnecting=broadcast.reconnecting,
            ingest_health=broadcast.health.report(time.monotonic()),
            warnings=broadcast.health.warnings(),
        )

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        """End the stream's session now (ban, delete, key reset, kick, max duration),
        closing its publisher if one is connected."""
        broadcast = self.broadcasts.get(livestream_id)
        if broadcast is None:
            return False
        publisher = broadcast.publisher
        if publisher is not None:
            # Detach first: the closed connection's own end (publisher_disconnected),
            # which may run while the event is emitted, must not decide the reason.
            broadcast.publisher = None
            publisher.stop(end_reason)
            await self._emit(events.DISCONNECTED, broadcast)
        await self.end_session(broadcast, end_reason)
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
        """End every session (`server_shutdown`) and let the consumers finish."""
        self.closing = True
        tasks = [t for b in self.broadcasts.values() for t in b.tasks]
        for livestream_id in list(self.broadcasts):
            await self.disconnect(livestream_id, "server_shutdown")
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for task in list(self._background):
            task.cancel()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
