"""The HLS packager: a Broadcast consumer that turns packets into an LL-HLS window.

Packets are remuxed, never decoded: the timeline gives each sample its exact
duration on one continuous clock, the cutter groups samples into parts and
segments, and the fMP4 writer turns each part into one moof+mdat. The first two
keyframes are held back to learn the publisher's keyframe interval, because
TARGETDURATION is fixed for the life of a playlist.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from live.broadcast.hub import Gap, PublisherChanged, StreamEnded, Subscription, TracksChanged
from live.hls import HlsRegistry, HlsStream, HlsWindow, Rendition
from live.hls.spill import SegmentSpill
from live.media.frame_rate import nominal_frame_rate
from live.media.packet import MediaPacket, TrackInfo
from live.media.timeline import TimedSample, Timeline
from live.packaging.cutter import PartCutter, plan_timing
from live.packaging.fmp4 import Fmp4Writer, track_timescale

if TYPE_CHECKING:
    from live.ladder.ladder import Ladder

log = logging.getLogger(__name__)

# How long to wait for a second keyframe before guessing the interval from time.
_MAX_KEYFRAME_WAIT_S = 12.0
PACKAGEABLE_CODECS = ("h264", "hevc", "aac", "opus")


@dataclass(frozen=True, slots=True)
class PackagingSettings:
    part_target: float = 0.2
    segment_target: float = 1.0
    window_segments: int = 7
    latency_mode: str = "low"


class PartTap(Protocol):
    """Gets the source rendition's CMAF as it is made, so another consumer (the
    recorder) stores these bytes instead of building them again. Called from the
    packager's loop: each call must return at once and never raise."""

    def on_init(self, data: bytes, tracks: tuple[TrackInfo, ...]) -> None: ...

    def on_segment(self, discontinuity: bool) -> None: ...

    def on_part(self, data: bytes, duration: float, independent: bool) -> None: ...

    def on_end(self, reason: str) -> None: ...


@dataclass
class _Learning:
    """Samples held back until the keyframe interval is known."""

    samples: list[tuple[TimedSample, float, bool]] = field(default_factory=list)
    keyframe_times: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    frame_durations: list[float] = field(default_factory=list)


class HlsPackager:
    """Consumes one Subscription and keeps one HlsStream up to date; `taps` get the
    source rendition's init sections and parts as they are made."""

    def __init__(
        self,
        subscription: Subscription,
        registry: HlsRegistry,
        playback_id: str,
        settings: PackagingSettings,
        *,
        on_warning: Callable[[str], None] | None = None,
        on_part: Callable[[], None] | None = None,
        ladder: Callable[[HlsPackager], Ladder | None] | None = None,
        spill: Callable[[], SegmentSpill] | None = None,
    ) -> None:
        """`spill` makes where the window keeps segments that have left its playlist
        (default: memory)."""
        self.subscription = subscription
        self.registry = registry
        self.playback_id = playback_id
        self.settings = settings
        self._on_warning = on_warning or (lambda message: None)
        self._on_part = on_part
        self._ladder_factory = ladder
        self._spill = spill
        self.ladder: Ladder | None = None
        self.stream: HlsStream | None = None
        self.window: HlsWindow | None = None
        self.rendition: Rendition | None = None
        self._cutter: PartCutter | None = None
        self._sink: _WindowSink | None = None
        self._writer: Fmp4Writer | None = None
        self._timeline: Timeline | None = None
        self._tracks: tuple[TrackInfo, ...] = ()
        self._learning: _Learning | None = _Learning()
        self._reference_kind = "video"
        self._frame_duration = 0.0
        self._bytes: deque[tuple[float, int]] = deque()
        self._total_bytes = 0
        self._window_bytes = 0  # the sum of the sizes in self._bytes
        self._first_byte_at: float | None = None
        self.parts_produced = 0
        self.taps: list[PartTap] = []
        self._failure: Exception | None = None  # raised by an inline packet

    @property
    def tracks(self) -> tuple[TrackInfo, ...]:
        return self._tracks

    async def run(self) -> None:
        # Packets are packaged inside the publisher's push when nothing is queued
        # before them (no task wake-up per packet); control items come through here.
        self.subscription.take_media_inline(self._on_packet_inline)
        try:
            while True:
                item = await self.subscription.get()
                if self._failure is not None:
                    raise self._failure
                if isinstance(item, MediaPacket):
                    self._on_packet(item)
                elif isinstance(item, TracksChanged):
                    self._on_tracks(item.tracks)
                elif isinstance(item, PublisherChanged | Gap):
                    self._on_source_break()
                elif isinstance(item, StreamEnded):
                    self._finish(item.reason)
                    if self.ladder is not None:
                        await self.ladder.close()
                    return
        except Exception:
            log.exception("packager for %s failed", self.playback_id)
            self._finish("error")
            raise

    def _on_packet_inline(self, packet: MediaPacket) -> None:
        """A packet handed over inside the publisher's push: a failure must not reach
        the publisher, so it closes the subscription and `run` raises it."""
        if self._failure is not None:
            return
        try:
            self._on_packet(packet)
        except Exception as error:
            self._failure = error
            self.subscription.close()

    # -- input ----------------------------------------------------------------------

    def _on_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        usable = tuple(t for t in tracks if t.codec in PACKAGEABLE_CODECS)
        if not usable:
            self._on_warning("None of the published codecs can be packaged for HLS.")
            return
        self._release_held()
        self._tracks = usable
        self._reference_kind = "video" if any(t.kind == "video" for t in usable) else "audio"
        self._writer = Fmp4Writer(usable)
        timescales = {t.kind: track_timescale(t) for t in usable}
        if self._timeline is None:
            self._timeline = Timeline(timescales)
        else:
            self._timeline.retrack(timescales)
        if self._cutter is not None and self._sink is not None:
            self._sink.writer = self._writer
            if self.ladder is not None:
                self.ladder.on_tracks(usable)
            self._cutter.new_init(self._writer.init, discontinuity=True)
        elif self._learning is not None:
            self._learning = _Learning()  # what was held belongs to the old init section
        self._update_rendition()

    def _on_source_break(self) -> None:
        """A new publisher, or media this consumer missed: carry on after a
        discontinuity, from the next keyframe."""
        self._release_held()
        if self._timeline is not None:
            self._timeline.reanchor()
        if self._cutter is not None:
            self._cutter.mark_discontinuity()

    def _on_packet(self, packet: MediaPacket) -> None:
        if self._timeline is None:
            return
        sample = self._timeline.push(packet)
        if sample is not None:
            self._on_sample(sample)

    def _release_held(self) -> None:
        if self._timeline is not None:
            for sample in self._timeline.flush():
                self._on_sample(sample)
        if self._cutter is not None:
            self._cutter.flush_part()

    def _on_sample(self, sample: TimedSample) -> None:
        assert self._writer is not None
        kind = sample.packet.kind
        reference = kind == self._reference_kind
        duration = sample.duration / self._writer.timescales[kind] if reference else 0.0
        keyframe = reference and kind == "video" and sample.packet.keyframe
        self._note_bytes(len(sample.packet.data))
        if self._learning is not None:
            self._learn(sample, duration, keyframe)
        elif self._cutter is not None:
            self._cutter.add(sample, duration, keyframe)

    # -- learning the keyframe interval ---------------------------------------------

    def _learn(self, sample: TimedSample, duration: float, keyframe: bool) -> None:
        learning = self._learning
        assert learning is not None
        if duration > 0:
            learning.frame_durations.append(duration)
        if self._reference_kind == "video":
            if keyframe:
                learning.keyframe_times.append(learning.elapsed)
            if not learning.keyframe_times:
                return  # nothing before the first keyframe is playable
        learning.samples.append((sample, duration, keyframe))
        learning.elapsed += duration
        ready = (
            self._reference_kind == "audio"
            or len(learning.keyframe_times) >= 2
            or learning.elapsed - learning.keyframe_times[0] >= _MAX_KEYFRAME_WAIT_S
        )
        if ready and learning.frame_durations:
            self._start_window(learning)

    def _start_window(self, learning: _Learning) -> None:
        assert self._writer is not None
        times = learning.keyframe_times
        video = self._reference_kind == "video"
        interval = times[1] - times[0] if len(times) >= 2 else learning.elapsed
        # A trimmed mean: RTMP's millisecond timestamps make single durations jitter
        # (33, 34, 33 ms), and a stall must not count as the frame rate.
        durations = sorted(learning.frame_durations)
        trim = len(durations) // 10
        kept = durations[trim : len(durations) - trim] or durations
        self._frame_duration = sum(kept) / len(kept)
        timing = plan_timing(
            part_target=self.settings.part_target,
            segment_target=self.settings.segment_target,
            frame_duration=self._frame_duration,
            keyframe_interval=interval if video else 0.0,
        )
        if video and interval > self.settings.segment_target + 0.05:
            self._on_warning(_long_gop_warning(interval, self.settings.segment_target))
        self.window = HlsWindow(
            target_duration=timing.target_duration,
            part_target=timing.part_target,
            window_segments=self.settings.window_segments,
            # Media URIs are cached as immutable: a new window under the same
            # playback id must never reuse an earlier one's numbers. Parts come at
            # most a few per second, so tenths of a second since 1970 stay ahead.
            first_number=int(time.time() * 10),
            spill=self._spill() if self._spill is not None else None,
        )
        if video and self._ladder_factory is not None:
            self.ladder = self._ladder_factory(self)
            if self.ladder is not None:
                self.ladder.on_tracks(self._tracks)
        sink = _WindowSink(
            self.window,
            self._writer,
            self._part_added,
            learning.elapsed,
            ladder=self.ladder,
            taps=self.taps,
        )
        self._sink = sink
        self._cutter = PartCutter(sink, timing, has_video=video, on_forced_cut=self._forced_cut)
        self._cutter.new_init(self._writer.init, discontinuity=False)
        self._learning = None
        self._update_rendition()
        for sample, duration, keyframe in learning.samples:
            self._cutter.add(sample, duration, keyframe)
        log.info(
            "stream %s: TARGETDURATION %d s, PART-TARGET %.3f s, %s",
            self.playback_id,
            timing.target_duration,
            timing.part_target,
            f"keyframe interval {interval:.2f} s" if video else "audio only",
        )

    # -- output ---------------------------------------------------------------------

    def close_windows(self) -> None:
        """The stream is taken down: free what its windows (the ladder's too) still
        hold, spilled segments included."""
        if self.window is not None:
            self.window.close()
        if self.ladder is not None:
            for window in self.ladder.windows:
                window.close()

    def _part_added(self) -> None:
        self.parts_produced += 1
        if self._on_part is not None:
            self._on_part()
        if self.stream is None and self.rendition is not None:
            self.stream = HlsStream(
                playback_id=self.playback_id,
                renditions=[self.rendition],
                latency_mode=self.settings.latency_mode,
            )
            self.registry.register(self.stream)
        elif self.rendition is not None and self.parts_produced % 5 == 0:
            self.rendition.bandwidth = max(self.rendition.bandwidth, self._bandwidth())
            self.rendition.average_bandwidth = self._average_bandwidth()

    def _forced_cut(self, segment_duration: float) -> None:
        self._on_warning(
            f"A segment reached {segment_duration:.1f} s without a keyframe and was cut; "
            "viewers may stall. Set the keyframe interval to 1 s (OBS: Settings → Output → "
            "Keyframe Interval = 1)."
        )

    def _finish(self, reason: str) -> None:
        try:
            self._release_held()
            learning = self._learning
            if learning is not None and learning.samples and learning.frame_durations:
                # Ended before a second keyframe: what came is still a stream (and
                # a recording), packaged with the interval seen so far.
                self._start_window(learning)
                self._release_held()
        finally:
            if self.window is not None:
                self.window.end()
            if self.ladder is not None:
                self.ladder.on_end()
            for tap in list(self.taps):
                tap.on_end(reason)

    def _average_bandwidth(self) -> int | None:
        """Bits per second over the whole stream so far."""
        if self._first_byte_at is None:
            return None
        span = time.monotonic() - self._first_byte_at
        return int(self._total_bytes * 8 / span) if span >= 0.2 else None

    def _note_bytes(self, size: int) -> None:
        now = time.monotonic()
        if self._first_byte_at is None:
            self._first_byte_at = now
        self._total_bytes += size
        self._bytes.append((now, size))
        self._window_bytes += size
        while self._bytes and now - self._bytes[0][0] > 10:
            self._window_bytes -= self._bytes.popleft()[1]

    def _bandwidth(self) -> int:
        """Peak-ish bits per second of what was received lately, plus headroom."""
        if len(self._bytes) < 2:
            return 3_000_000
        span = max(1.0, self._bytes[-1][0] - self._bytes[0][0])
        return max(64_000, int(self._window_bytes * 8 / span * 1.25))

    def _update_rendition(self) -> None:
        if self.window is None:
            return
        video = next((t for t in self._tracks if t.kind == "video"), None)
        codecs = ",".join(t.codec_string for t in self._tracks if t.codec_string)
        resolution = (video.width, video.height) if video and video.width else None
        frame_rate = (
            nominal_frame_rate(1 / self._frame_duration) if video and self._frame_duration else None
        )
        if self.rendition is None:
            self.rendition = Rendition(
                name="source",
                window=self.window,
                bandwidth=self._bandwidth(),
                average_bandwidth=self._average_bandwidth(),
                codecs=codecs,
                resolution=resolution,
                frame_rate=frame_rate,
                audio_only=video is None,
            )
        else:
            self.rendition.codecs = codecs
            self.rendition.resolution = resolution


class _WindowSink:
    """Turns the cutter's parts into fragments for the window, and dates segments.

    EXT-X-PROGRAM-DATE-TIME follows media time from an anchor taken when the
    first sample arrived, so segments released together (the first GOPs, held
    while the keyframe interval was learnt) still get their own times.
    """

    def __init__(
        self,
        window: HlsWindow,
        writer: Fmp4Writer,
        on_part: Callable[[], None],
        backlog_s: float,
        *,
        ladder: Ladder | None = None,
        taps: list[PartTap] | None = None,
    ) -> None:
        self._window = window
        self._ladder = ladder
        self._taps = taps if taps is not None else []
        self.writer = writer
        self._on_part = on_part
        self._position = 0.0
        self._anchor_position = 0.0
        self._anchor_wall = time.time() - backlog_s

    def set_init(self, data: bytes) -> None:
        self._window.set_init(data)
        for tap in self._taps:
            tap.on_init(data, self.writer.tracks)

    def start_segment(self, *, discontinuity: bool = False) -> None:
        wall = self._anchor_wall + (self._position - self._anchor_position)
        if discontinuity:  # a new source clock: date it by arrival, never going back
            wall = max(wall, time.time())
            self._anchor_wall, self._anchor_position = wall, self._position
        program_date_time = datetime.fromtimestamp(wall, tz=UTC)
        self._window.start_segment(discontinuity=discontinuity, program_date_time=program_date_time)
        if self._ladder is not None:
            self._ladder.on_segment(discontinuity, program_date_time)
        for tap in self._taps:
            tap.on_segment(discontinuity)

    def add_part(self, items: list[TimedSample], duration: float, independent: bool) -> None:
        data = self.writer.fragment(items)
        self._window.add_part(data, duration, independent)
        for tap in self._taps:
            tap.on_part(data, duration, independent)
        if self._ladder is not None:
            video = [s for s in items if s.packet.kind == "video"]
            if video:
                self._ladder.on_part(items, video[-1].dts + video[-1].duration, independent)
        self._position += duration
        self._on_part()


def _long_gop_warning(interval: float, segment_target: float) -> str:
    return (
        f"The keyframe interval is {interval:.1f} s, longer than the {segment_target:g} s "
        "segment target, which adds latency. Set the keyframe interval to 1 s "
        "(OBS: Settings → Output → Keyframe Interval = 1; ffmpeg: -g equal to the frame rate)."
    )
