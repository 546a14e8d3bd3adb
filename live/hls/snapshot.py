"""Immutable views of an HLS window, taken at one version.

Playlist rendering works on these instead of on the live window so that it is a pure
function (testable without asyncio) and so that one rendering is atomic: the packager
can keep appending parts while a snapshot is being turned into text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One EXT-X-PART: `index` is the global part counter that names `part-{index}.m4s`."""

    index: int
    duration: float
    independent: bool


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One media segment as the playlist shows it.

    `parts` is None when the segment's EXT-X-PART tags are no longer listed (more than
    3 x TD from the end); `closed` is False only for the open segment, which the playlist
    shows as parts without an EXTINF line.
    """

    msn: int
    duration: float
    program_date_time: datetime
    init_id: int
    discontinuity: bool
    closed: bool
    parts: tuple[PartInfo, ...] | None


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """Everything a media playlist needs, frozen at `version`.

    `segments` holds the playlist's segments in order, the open one last when it has
    parts. `pending_init_id` differs from the last segment's init when a new init section
    was set and the next segment will start with it (a MAP preload hint).
    """

    version: int
    target_duration: int
    part_target: float
    media_sequence: int
    discontinuity_sequence: int
    segments: tuple[SegmentInfo, ...]
    next_part: int
    pending_init_id: int | None
    ended: bool
    last_msn: int
    last_part: int

    @property
    def closed_segments(self) -> tuple[SegmentInfo, ...]:
        return tuple(s for s in self.segments if s.closed)

    @property
    def has_parts(self) -> bool:
        return self.last_part >= 0
