"""The HLS packager: a Broadcast consumer that turns packets into an LL-HLS window.

It remuxes (never decodes) with PyAV into per-frame CMAF fragments, learns the
publisher's keyframe interval from the first two keyframes so TARGETDURATION can
be fixed once for the life of the playlist, and hands parts to an HlsWindow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from live.broadcast.hub import Gap, PublisherChanged, StreamEnded, Subscription, TracksChanged
from live.hls import HlsRegistry, HlsStream, HlsWindow, Rendition
from live.media.packet import MediaPacket, TrackInfo
from live.media.timeline import Timeline
from live.packaging.bmff import Fragment
from live.packaging.cutter import PartCutter, Timing, plan_timing
from live.packaging.fmp4 import Fmp4Muxer, track_timescale

log = logging.getLogger(__name__)

# How long to wait for a second keyframe before guessing the interval from time.
_MAX_KEYFRAME_WAIT_S = 12.0


@dataclass(frozen=True, slots=True)
class PackagingSettings:
    part_target: float = 0.2
    segment_target: float = 1.0
    window_segments: int = 7
    latency_mode: str = "low"


class _Learning:
    """Fragments held back until the keyframe interval is known."""

    def __init__(self) -> None:
        self.fragments: list[tuple[Fragment, float, bool]] = []
        self.keyframe_times: list[float] = []
        self.elapsed = 0.0
        self.frame_durations: list[float] = []


class HlsPackager:
    """Consumes one Subscription and keeps one HlsStream up to date."""

    def __init__(
        self,
        subscription: Subscription,
        registry: HlsRegistry,
        playback_id: str,
        settings: PackagingSettings,
        *,
        on_warning: Callable[[str], None] | None = None,
        on_part: Callable[[], None] | None = None,
    ) -> None:
        self.subscription = subscription
        self.registry = registry
        self.playback_id = playback_id
        self.settings = settings
        self._on_warning = on_warning or (lambda message: None)
        self._on_part = on_part
        self.stream: HlsStream | None = None
        self.window: HlsWindow | None = None
        self.rendition: Rendition | None = None
        self._cutter: PartCutter | None = None
        self._muxer: Fmp4Muxer | None = None
        self._timeline: Timeline | None = None
        self._tracks: tuple[TrackInfo, ...] = ()
        self._learning: _Learning | None = _Learning()
        self._reference_kind = "video"
        self._pending_init = False
        self._frame_duration = 0.0
        self._keyframe_interval = 0.0
        self._bytes_window: list[tuple[float, int]] = []
        self.parts_produced = 0

    async def run(self) -> None:
        try:
            while True:
                item = await self.subscription.get()
                if isinstance(item, MediaPacket):
                    self._on_packet(item)
                elif isinstance(item, TracksChanged):
                    self._on_tracks(item.tracks)
                elif isinstance(item, PublisherChanged):
                    self._on_publisher_changed()
                elif isinstance(item, Gap):
                    self._on_publisher_changed()
                elif isinstance(item, StreamEnded):
                    self._finish()
                    return
        except Exception:
            log.exception("packager for %s failed", self.playback_id)
            self._finish()
            raise

    # -- input handling -------------------------------------------------------------

    def _on_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        usable = tuple(t for t in tracks if t.codec in ("h264", "hevc", "aac", "opus"))
        if not usable:
            self._on_warning("None of the published codecs can be packaged for HLS.")
            return
        self._drain_muxer()
        self._tracks = usable
        self._reference_kind = "video" if any(t.kind == "video" for t in usable) else "audio"
        self._muxer = Fmp4Muxer(list(usable))
        timescales = {t.kind: track_timescale(t) for t in usable}
        if self._timeline is None:
            self._timeline = Timeline(timescales)
        else:
            self._timeline.retrack(timescales)
        if self._cutter is not None:
            self._pending_init = True
        elif self._learning is not None:
            self._learning = _Learning()  # what was held belongs to the old init section
        self._update_rendition_info()

    def _on_publisher_changed(self) -> None:
        self._drain_muxer()
        if self._timeline is not None:
            self._timeline.reanchor()
        if self._cutter is not None:
            self._cutter.mark_discontinuity()

    def _on_packet(self, packet: MediaPacket) -> None:
        if self._muxer is None or self._timeline is None:
            return
        sample = self._timeline.push(packet)
        if sample is None:
            return
        timed = MediaPacket(
            sample.packet.kind, sample.dts, sample.pts, sample.packet.data, sample.packet.keyframe,
        )
        for fragment in self._muxer.mux(timed, sample.duration):
            self._on_fragment(fragment)

    def _drain_muxer(self) -> None:
        if self._muxer is None or self._timeline is None:
            return
        for sample in self._timeline.flush():
            timed = MediaPacket(
                sample.packet.kind, sample.dts, sample.pts, sample.packet.data,
                sample.packet.keyframe,
            )
            for fragment in self._muxer.mux(timed, sample.duration):
                self._on_fragment(fragment)
        for fragment in self._muxer.close():
            self._on_fragment(fragment)
        self._muxer = None

    # -- fragments to parts ---------------------------------------------------------

    def _on_fragment(self, fragment: Fragment) -> None:
        muxer = self._muxer
        assert muxer is not None
        track_id = muxer.track_id(self._reference_kind)
        run = fragment.runs.get(track_id) if track_id is not None else None
        duration = run.duration / muxer.timescale(self._reference_kind) if run else 0.0
        keyframe = bool(run and run.first_sample_sync and self._reference_kind == "video")
        self._note_bytes(len(fragment.data))
        if self._learning is not None:
            self._learn(fragment, duration, keyframe, run.durations if run else [])
            return
        if self._pending_init and muxer.init:
            assert self._cutter is not None
            self._cutter.new_init(muxer.init, discontinuity=True)
            self._pending_init = False
        assert self._cutter is not None
        self._cutter.add(fragment.data, duration, keyframe)

    def _learn(self, fragment: Fragment, duration: float, keyframe: bool, durations) -> None:
        learning = self._learning
        assert learning is not None and self._muxer is not None
        scale = self._muxer.timescale(self._reference_kind)
        learning.frame_durations.extend(d / scale for d in durations)
        if self._reference_kind == "video":
            if keyframe:
                learning.keyframe_times.append(learning.elapsed)
            if not learning.keyframe_times:
                return  # nothing before the first keyframe is playable
        learning.fragments.append((fragment, duration, keyframe))
        learning.elapsed += duration
        ready = (
            self._reference_kind == "audio"
            or len(learning.keyframe_times) >= 2
            or learning.elapsed - learning.keyframe_times[0] >= _MAX_KEYFRAME_WAIT_S
        )
        if ready and learning.frame_durations:
            self._start_window(learning)

    def _start_window(self, learning: _Learning) -> None:
        assert self._muxer is not None
        times = learning.keyframe_times
        interval = times[1] - times[0] if len(times) >= 2 else learning.elapsed
        # A trimmed mean: RTMP's millisecond timestamps make single durations jitter
        # (33, 34, 33 ms), and a stall must not count as the frame rate.
        durations = sorted(learning.frame_durations)
        trim = len(durations) // 10
        kept = durations[trim : len(durations) - trim] or durations
        frame_duration = sum(kept) / len(kept)
        timing = plan_timing(
            part_target=self.settings.part_target,
            segment_target=self.settings.segment_target,
            frame_duration=frame_duration,
            keyframe_interval=interval if self._reference_kind == "video" else 0.0,
        )
        self._keyframe_interval = interval
        if self._reference_kind == "video" and interval > self.settings.segment_target + 0.05:
            self._on_warning(_long_gop_warning(interval, self.settings.segment_target))
        self.window = HlsWindow(
            target_duration=timing.target_duration,
            part_target=timing.part_target,
            window_segments=self.settings.window_segments,
        )
        self._frame_duration = frame_duration
        self._cutter = PartCutter(
            _CountingSink(self.window, self._part_added, backlog_s=learning.elapsed),
            timing,
            has_video=self._reference_kind == "video",
            on_forced_cut=self._forced_cut,
        )
        self._cutter.new_init(self._muxer.init, discontinuity=False)
        self._learning = None
        self._update_rendition_info()
        for fragment, duration, keyframe in learning.fragments:
            self._cutter.add(fragment.data, duration, keyframe)
        log.info(
            "stream %s: TARGETDURATION %d s, PART-TARGET %.3f s, keyframe interval %.2f s",
            self.playback_id, timing.target_duration, timing.part_target, interval,
        )

    def _part_added(self) -> None:
        self.parts_produced += 1
        if self.stream is None and self.rendition is not None:
            self.stream = HlsStream(
                playback_id=self.playback_id,
                renditions=[self.rendition],
                latency_mode=self.settings.latency_mode,
            )
            self.registry.register(self.stream)
        if self._on_part is not None:
            self._on_part()

    def _forced_cut(self, segment_duration: float) -> None:
        self._on_warning(
            f"A segment reached {segment_duration:.1f} s without a keyframe and was cut; "
            "viewers may stall. Set the keyframe interval to 1 s (OBS: Settings → Output → "
            "Keyframe Interval = 1)."
        )

    def _finish(self) -> None:
        try:
            self._drain_muxer()
        finally:
            if self._cutter is not None:
                self._cutter.flush_part()
            if self.window is not None:
                self.window.end()

    # -- multivariant information --------------------------------------------------

    def _note_bytes(self, size: int) -> None:
        now = time.monotonic()
        self._bytes_window.append((now, size))
        while self._bytes_window and now - self._bytes_window[0][0] > 10:
            self._bytes_window.pop(0)

    def _update_rendition_info(self) -> None:
        if self.window is None:
            return
        video = next((t for t in self._tracks if t.kind == "video"), None)
        codecs = ",".join(t.codec_string for t in self._tracks if t.codec_string)
        resolution = (video.width, video.height) if video and video.width else None
        frame_rate = None
        if video is not None and self._frame_duration:
            frame_rate = round(1 / self._frame_duration, 3)
        bandwidth = self._estimated_bandwidth()
        if self.rendition is None:
            self.rendition = Rendition(
                name="source",
                window=self.window,
                bandwidth=bandwidth,
                average_bandwidth=None,
                codecs=codecs,
                resolution=resolution,
                frame_rate=frame_rate,
                audio_only=video is None,
            )
        else:
            self.rendition.codecs = codecs
            self.rendition.resolution = resolution
            self.rendition.bandwidth = max(self.rendition.bandwidth, bandwidth)

    def _estimated_bandwidth(self) -> int:
        if len(self._bytes_window) < 2:
            return 3_000_000
        span = max(0.5, self._bytes_window[-1][0] - self._bytes_window[0][0])
        total = sum(size for _, size in self._bytes_window)
        return max(64_000, int(total * 8 / span * 1.2))


class _CountingSink:
    """Passes window calls through, reports each new part, and dates segments.

    EXT-X-PROGRAM-DATE-TIME follows media time from an anchor taken when the
    first sample arrived, so segments released together (the first GOPs, held
    while the keyframe interval was learnt) still get their own times.
    """

    def __init__(self, window: HlsWindow, on_part: Callable[[], None], backlog_s: float) -> None:
        self._window = window
        self._on_part = on_part
        self._position = 0.0
        self._anchor_position = 0.0
        self._anchor_wall = time.time() - backlog_s

    def set_init(self, data: bytes) -> None:
        self._window.set_init(data)

    def start_segment(self, *, discontinuity: bool = False) -> None:
        wall = self._anchor_wall + (self._position - self._anchor_position)
        if discontinuity:  # a new source clock: date it by arrival, never going back
            wall = max(wall, time.time())
            self._anchor_wall, self._anchor_position = wall, self._position
        self._window.start_segment(
            discontinuity=discontinuity,
            program_date_time=datetime.fromtimestamp(wall, tz=UTC),
        )

    def add_part(self, data: bytes, duration: float, independent: bool) -> None:
        self._window.add_part(data, duration, independent)
        self._position += duration
        self._on_part()


def _long_gop_warning(interval: float, segment_target: float) -> str:
    return (
        f"The keyframe interval is {interval:.1f} s, longer than the {segment_target:g} s "
        "segment target, which adds latency. Set the keyframe interval to 1 s "
        "(OBS: Settings → Output → Keyframe Interval = 1; ffmpeg: -g equal to the frame rate)."
    )


__all__ = ["HlsPackager", "PackagingSettings", "Timing"]
