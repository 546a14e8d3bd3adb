"""The codec side of a ladder, run in one worker thread: decode the source once,
scale and encode every rung, and cut the rung outputs exactly where the source
rendition was cut.

The source packager tells this what it did, in order: a new source configuration,
a segment start, a part with its samples. Every rung then gets the same segment
and part boundaries, so media sequence numbers, part indexes and durations line up
across renditions (what players need to switch between them at any part).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from live.ladder.plan import Rung
from live.media.packet import MediaPacket, TrackInfo
from live.media.timeline import TimedSample
from live.transcode.video import H264Encoder, H264Settings, VideoDecoder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceTracks:
    tracks: tuple[TrackInfo, ...]


@dataclass(frozen=True, slots=True)
class SegmentStart:
    discontinuity: bool
    program_date_time: datetime


@dataclass(frozen=True, slots=True)
class SourcePart:
    samples: tuple[TimedSample, ...]
    end: int  # decode time (90 kHz) where the next part begins
    independent: bool


@dataclass(frozen=True, slots=True)
class Flush:
    """The stream ends: release every frame still inside the codecs."""


LadderInput = SourceTracks | SegmentStart | SourcePart | Flush


@dataclass(frozen=True, slots=True)
class RungPart:
    """A part of one rung, ready to become a fragment: its video samples (in the
    rung's encoding) and the source's audio samples."""

    samples: tuple[TimedSample, ...]
    duration_ticks: int
    independent: bool


# ("track", TrackInfo) | ("segment", SegmentStart) | ("part", RungPart) | ("flushed", None)
RungOp = tuple[str, object]
FLUSHED: tuple[str, RungOp] = ("*", ("flushed", None))


@dataclass
class _RungState:
    rung: Rung
    encoder: H264Encoder
    track: TrackInfo | None = None
    ready: deque[TimedSample] = field(default_factory=deque)  # encoded video, dts order
    held: MediaPacket | None = None  # the newest frame, until the next gives its duration
    last_duration: int = 3000
    announced: bool = False  # its TrackInfo has been handed out


class LadderEncoder:
    """Not thread-safe: one worker thread calls `process` in order."""

    def __init__(self, rungs: list[Rung], *, preset: str = "veryfast") -> None:
        self.rungs = rungs
        self._preset = preset
        self._states: dict[str, _RungState] = {}
        self._decoder: VideoDecoder | None = None
        self._pending: deque[tuple[str, object, tuple[TimedSample, ...]]] = deque()
        self._decode_delay = 0  # source pts - dts of keyframes: B-frame reordering
        self._keyframe_pts: set[int] = set()
        self._frames_in = 0
        self._frames_out = 0
        # Rungs to stop encoding because the machine cannot keep up. Written by the
        # event loop, read here: a set add is atomic, and the worker drops the state.
        self.disabled: set[str] = set()

    def process(self, item: LadderInput) -> list[tuple[str, RungOp]]:
        """Take one source event; return (rung name, op) pairs that are complete."""
        for name in self.disabled & self._states.keys():
            del self._states[name]
        if isinstance(item, SourceTracks):
            video = next((t for t in item.tracks if t.kind == "video"), None)
            self._decoder = None
            if video is not None:
                self._decoder = VideoDecoder(video.codec, extradata=video.extradata)
            self._frames_in = self._frames_out = 0
            return []
        if isinstance(item, SegmentStart):
            self._pending.append(("segment", item, ()))
            return self._complete()
        if isinstance(item, SourcePart):
            for sample in item.samples:
                if sample.packet.kind == "video":
                    self._decode(sample)
            audio = tuple(s for s in item.samples if s.packet.kind == "audio")
            self._pending.append(("part", item, audio))
            return self._complete()
        return self._flush()

    # -- codecs ---------------------------------------------------------------------

    def _decode(self, sample: TimedSample) -> None:
        if self._decoder is None:
            return
        if sample.packet.keyframe:
            self._decode_delay = sample.pts - sample.dts
            self._keyframe_pts.add(sample.pts)
        self._frames_in += 1
        for frame in self._decoder.decode(sample.packet.data, sample.pts):
            self._frames_out += 1
            self._encode(frame)

    def _encode(self, frame) -> None:
        pts = frame.pts
        keyframe = pts in self._keyframe_pts
        self._keyframe_pts.discard(pts)
        for rung in self.rungs:
            if rung.name in self.disabled:
                continue
            state = self._states.get(rung.name)
            if state is None:
                settings = H264Settings(preset=self._preset, bitrate=rung.bitrate, threads=1)
                state = _RungState(rung, H264Encoder(rung.width, rung.height, settings))
                self._states[rung.name] = state
            scaled = frame.reformat(rung.width, rung.height, "yuv420p")
            scaled.pts, scaled.time_base = pts, frame.time_base
            for packet in state.encoder.encode(scaled, keyframe=keyframe):
                self._append(state, packet)

    def _append(self, state: _RungState, packet: MediaPacket) -> None:
        """Rung timestamps: the source's presentation time less its decode delay, so
        a rung keyframe has the very decode time of the source keyframe."""
        if state.track is None and state.encoder.track is not None:
            state.track = state.encoder.track
        dts = packet.pts - self._decode_delay
        timed = MediaPacket("video", dts, dts, packet.data, packet.keyframe, packet.time_base)
        if state.held is not None:
            duration = max(1, dts - state.held.dts)
            state.last_duration = duration
            state.ready.append(TimedSample(state.held, state.held.dts, state.held.dts, duration))
        state.held = timed

    def _release_held(self) -> None:
        for state in self._states.values():
            if state.held is not None:
                held = state.held
                state.ready.append(TimedSample(held, held.dts, held.dts, state.last_duration))
                state.held = None

    def _flush(self) -> list[tuple[str, RungOp]]:
        if self._decoder is not None:
            for frame in self._decoder.flush():
                self._frames_out += 1
                self._encode(frame)
        for state in self._states.values():
            for packet in state.encoder.flush():
                self._append(state, packet)
        self._release_held()
        return [*self._complete(final=True), FLUSHED]

    # -- cutting --------------------------------------------------------------------

    def _complete(self, final: bool = False) -> list[tuple[str, RungOp]]:
        """Emit pending segment starts and parts, in order, once every rung has the
        frames they need (a B-frame source keeps a few frames in the decoder)."""
        out: list[tuple[str, RungOp]] = []
        while self._pending:
            kind, item, audio = self._pending[0]
            if not self._states and not final:
                if self._decoder is None or len(self.disabled) == len(self.rungs):
                    self._pending.clear()  # nothing will ever be encoded
                break  # the rung encoders start with the first decoded frame
            if kind == "part":
                assert isinstance(item, SourcePart)
                if not final and not self._frames_until(item.end):
                    break
            self._pending.popleft()
            for name, state in self._states.items():
                if state.track is not None and not state.announced:
                    out.append((name, ("track", state.track)))
                    state.announced = True
                if kind == "segment":
                    out.append((name, ("segment", item)))
                else:
                    assert isinstance(item, SourcePart)
                    out.append((name, ("part", self._cut(state, item, audio, final))))
        return out

    def _frames_until(self, end: int) -> bool:
        """Whether every rung has all its frames before decode time `end`.

        With nothing left inside the decoder, the frame each rung holds is the last
        one before `end`, and its duration runs to `end` (where the next part starts).
        """
        if self._frames_in == self._frames_out:
            for state in self._states.values():
                held = state.held
                if held is not None and held.dts < end:
                    state.last_duration = max(1, end - held.dts)
                    state.ready.append(TimedSample(held, held.dts, held.dts, state.last_duration))
                    state.held = None
            return True
        return all(
            state.held is not None and state.held.dts >= end for state in self._states.values()
        )

    @staticmethod
    def _cut(
        state: _RungState, part: SourcePart, audio: tuple[TimedSample, ...], final: bool
    ) -> RungPart:
        video: list[TimedSample] = []
        while state.ready and (final or state.ready[0].dts < part.end):
            video.append(state.ready.popleft())
        duration = sum(s.duration for s in video)
        independent = bool(video) and video[0].packet.keyframe
        return RungPart(tuple(video) + audio, duration, independent)
