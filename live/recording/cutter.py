"""Where a recording's parts and segments begin, apart from any I/O.

Unlike the live window, a recording has no fixed TARGETDURATION to honour (the VOD
playlist is written at the end), so the rules are simple: a segment begins on a
video keyframe once the segment target is reached (on time alone for audio-only
streams), and a part, the unit that is made durable, is flushed every
`part_target` seconds of media, so a crash loses at most that much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CutPart:
    """Samples to store as one fragment; `segment_start` on a segment's first part."""

    items: list[Any]
    duration: float
    segment: int
    segment_start: bool
    discontinuity: bool


class RecordingCutter:
    """Groups samples into parts and segments; returns parts as they complete."""

    def __init__(self, *, part_target: float, segment_target: float, has_video: bool) -> None:
        self.part_target = part_target
        self.segment_target = segment_target
        self.has_video = has_video
        self.segment = 0
        self.dropped = 0
        self._items: list[Any] = []
        self._part_duration = 0.0
        self._part_starts_segment = False
        self._segment_duration = 0.0
        self._segment_open = False
        self._discontinuity = False
        self._part_discontinuity = False

    def add(self, item: Any, duration: float, keyframe: bool) -> list[CutPart]:
        """One sample: `duration` on the reference track (video, or audio when
        there is none; 0 for the other track), `keyframe` if it is a video keyframe."""
        done: list[CutPart] = []
        if not self._segment_open and self.has_video and not keyframe:
            self.dropped += 1  # nothing before a keyframe can be decoded
            return done
        if self._starts_segment(duration, keyframe):
            done += self.flush()
            self.segment += 1
            self._segment_open = True
            self._segment_duration = 0.0
            self._part_starts_segment = True
            self._part_discontinuity = self._discontinuity
            self._discontinuity = False
        elif duration > 0 and self._part_duration >= self.part_target * 0.95:
            # Full: flushed when the next frame comes, so the other track's samples
            # that belong before it ride along instead of making a part of their own.
            done += self.flush()
        self._items.append(item)
        self._part_duration += duration
        self._segment_duration += duration
        return done

    def _starts_segment(self, duration: float, keyframe: bool) -> bool:
        if not self._segment_open:
            return True
        if duration <= 0:
            return False
        reached = self._segment_duration >= self.segment_target * 0.95
        return reached and (keyframe or not self.has_video)

    def break_source(self, *, has_video: bool | None = None) -> list[CutPart]:
        """The source changed (new publisher, new init section, lost media): the
        next sample starts a new segment after a discontinuity."""
        done = self.flush()
        if has_video is not None:
            self.has_video = has_video
        if self._segment_open or self.segment:
            self._discontinuity = True
        self._segment_open = False
        return done

    def flush(self) -> list[CutPart]:
        """The part in progress, even a short one (end of stream, new segment)."""
        if not self._items:
            return []
        part = CutPart(
            self._items,
            self._part_duration,
            self.segment,
            self._part_starts_segment,
            self._part_discontinuity,
        )
        self._items = []
        self._part_duration = 0.0
        self._part_starts_segment = False
        self._part_discontinuity = False
        return [part]
