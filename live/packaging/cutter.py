"""Where parts and segments begin: the LL-HLS timing rules, apart from any I/O.

Samples (one frame each) are grouped into parts no longer than the advertised
PART-TARGET and, because another frame would not fit, no shorter than it by more
than one frame; a segment closes at the keyframe nearest the segment target: the
first one past which the next (expected one keyframe interval later, as measured
on the stream) would be further from the target. With keyframes every 0.4 s and a
1 s target that is 0.8 or 1.2 s, never a 1.5 s segment of four intervals, and
encoders whose interval wobbles (x264's 0.37-0.43 s) do not push segments long.
A keyframe interval that outgrows the fixed TARGETDURATION gets a segment cut
without a keyframe (the part is then not INDEPENDENT) and a warning instead of a
playlist that breaks the spec.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# EXTINF is compared with TARGETDURATION after rounding to the nearest integer.
_ROUNDING_SLACK_S = 0.49
# Keyframe intervals remembered to judge where the next keyframe will come.
_INTERVALS_KEPT = 4


class PartSink(Protocol):
    def set_init(self, data: bytes) -> None: ...

    def start_segment(self, *, discontinuity: bool = False) -> None: ...

    def add_part(self, items: list[Any], duration: float, independent: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """The fixed timing of one rendition's playlist."""

    part_target: float  # advertised PART-TARGET, seconds
    target_duration: int  # TARGETDURATION, seconds
    segment_target: float  # preferred segment length, seconds
    frame_duration: float  # nominal duration of one reference-track sample
    keyframe_interval: float = 0.0  # as first measured; 0: unknown or no video


def plan_timing(
    *, part_target: float, segment_target: float, frame_duration: float, keyframe_interval: float
) -> Timing:
    """Fix PART-TARGET and TARGETDURATION from what the publisher sends.

    Parts are a whole number of frames, and PART-TARGET gets a few ms of slack so
    millisecond-rounded RTMP timestamps never push a part past it. Segments close at
    the keyframe nearest the target, so the longest is one interval when keyframes
    are rarer than the target, else the target and half an interval.
    """
    frames_per_part = max(1, round(part_target / frame_duration))
    advertised_part = math.ceil((frames_per_part * frame_duration + 0.004) * 1000) / 1000
    if keyframe_interval >= segment_target:
        longest = keyframe_interval
    else:
        longest = segment_target + keyframe_interval / 2
    # EXTINF is rounded before it is compared with TARGETDURATION (1e-9: float noise)
    target_duration = max(1, math.ceil(longest - 0.45 - 1e-9), math.ceil(segment_target))
    return Timing(
        advertised_part, target_duration, segment_target, frame_duration, keyframe_interval
    )


class PartCutter:
    """Groups samples into parts and segments for a PartSink.

    The samples themselves are opaque here: each comes with its duration on the
    reference track (video, or audio when there is no video; other tracks' samples
    count 0) and whether it is a keyframe of the reference track.
    """

    def __init__(
        self,
        sink: PartSink,
        timing: Timing,
        *,
        has_video: bool,
        on_forced_cut: Callable[[float], None] | None = None,
    ) -> None:
        self.sink = sink
        self.timing = timing
        self.has_video = has_video
        self._on_forced_cut = on_forced_cut
        self._items: list[Any] = []
        self._part_duration = 0.0
        self._part_independent = False
        self._segment_duration = 0.0
        self._segment_open = False
        self._discontinuity = False
        # The last few keyframe intervals measured (seeded with the planned one).
        self._intervals: deque[float] = deque([timing.keyframe_interval], maxlen=_INTERVALS_KEPT)
        self._since_keyframe = 0.0

    def new_init(self, init: bytes, *, discontinuity: bool) -> None:
        """A new init section applies from the next segment on."""
        self.flush_part()
        self._items.clear()  # leftovers belong to the old init section
        self._part_duration = 0.0
        self.sink.set_init(init)
        self._segment_open = False
        self._discontinuity = self._discontinuity or discontinuity

    def mark_discontinuity(self) -> None:
        """The next fragment starts a new segment with EXT-X-DISCONTINUITY."""
        self.flush_part()
        self._segment_open = False
        self._discontinuity = True

    def add(self, item: Any, duration: float, keyframe: bool) -> None:
        """One sample: `duration` on the reference track (0 for other tracks),
        `keyframe` if it is a sync sample of the reference track."""
        if not self._segment_open and self.has_video and not keyframe:
            return  # a segment may only begin on a keyframe
        if keyframe and duration > 0:
            if self._since_keyframe > 0:
                self._intervals.append(self._since_keyframe)
            self._since_keyframe = 0.0
        self._since_keyframe += duration
        if self._should_cut_segment(duration, keyframe):
            self.flush_part()
            self.sink.start_segment(discontinuity=self._discontinuity)
            self._discontinuity = False
            self._segment_open = True
            self._segment_duration = 0.0
        elif self._part_duration > 0 and (
            self._part_duration + duration > self.timing.part_target + 1e-6
        ):
            # A late or long frame would push the part past PART-TARGET, which
            # the spec forbids: it opens the next part instead.
            self.flush_part()
        if duration > 0 and self._part_duration == 0:
            # The part's first sample of the reference track decides independence;
            # audio that rode along before it does not count.
            self._part_independent = keyframe or not self.has_video
        self._items.append(item)
        self._part_duration += duration
        self._segment_duration += duration
        if self._part_duration + self.timing.frame_duration > self.timing.part_target + 1e-6:
            self.flush_part()

    def _should_cut_segment(self, duration: float, keyframe: bool) -> bool:
        if not self._segment_open:
            return True
        if duration <= 0:
            return False
        half_frame = self.timing.frame_duration / 2
        if self.has_video:
            closes_at = self.timing.segment_target - self._slack() - 1e-6  # sums of durations
            if keyframe and self._segment_duration >= closes_at:
                return True
            limit = self.timing.target_duration + _ROUNDING_SLACK_S
            if self._segment_duration + duration > limit:
                if self._on_forced_cut is not None:
                    self._on_forced_cut(self._segment_duration)
                return True
            return False
        return self._segment_duration >= self.timing.segment_target - half_frame

    def _slack(self) -> float:
        """How far short of the target a keyframe may close the segment: half the
        interval to the next keyframe, which is then expected further away, and a
        frame more, so that near-ties go to the shorter segment (the next interval
        may well be a frame longer). Keyframes several to a segment wobble (x264:
        11 to 13 frames), so the longest recent interval is expected, which keeps
        every segment under the target plus half an interval; a lone early keyframe
        (a scene cut) among rare ones is judged by itself and cuts no short segment."""
        latest = self._intervals[-1]
        expected = latest if latest >= self.timing.segment_target / 2 else max(self._intervals)
        return expected / 2 + self.timing.frame_duration

    def flush_part(self) -> None:
        """Publish the part in progress. Samples without reference-track time
        (audio after the last video frame) wait for the next part instead."""
        if not self._items or self._part_duration <= 0:
            return
        items, self._items = self._items, []
        duration, self._part_duration = self._part_duration, 0.0
        self.sink.add_part(items, duration, self._part_independent)
