"""How late each LL-HLS part of a live stream was announced, against the publisher's pace.

`many_streams.py` gives every stream one watcher doing blocking playlist reloads; this
module is the pure part of it (no sockets, no clocks), so the rules are unit-tested.

- `PartLog` takes a stream's successive media playlists with the time each arrived and
  keeps, for every part it had not seen, that arrival and the part's media start and
  duration (EXT-X-PART DURATION). Media time is the sum of the durations of the parts
  before it, counted from the first part announced after the watcher joined (a
  constant offset, which the T0 estimate below absorbs); that only holds if no part
  is missed, so a playlist in which the last part seen is no longer listed counts as
  a skip and starts a new run with its own media time.
- A publisher at real time (`ffmpeg -re`) sends the frame of media time t at about
  T0 + t, so a part ending at media time e can be complete at T0 + e. T0 is not
  known; per run it is estimated as the smallest (arrival - end) over the run's parts,
  i.e. lateness is counted from the stream's best part, and the lateness of a part is
  arrival - (T0 + end).
- A part is on time when arrival - (T0 + start) <= part target + allowance: for a part
  of the target duration, lateness <= allowance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from common import percentile

_PART_LINE = re.compile(r"^#EXT-X-PART:(.*)$", re.M)
_DURATION = re.compile(r"(?:^|,)DURATION=([0-9.]+)")
_URI = re.compile(r'(?:^|,)URI="([^"]*)"')
_TOLERANCE = 1e-9  # playlists round durations to 10 µs; float sums must not tip a tie


def listed_parts(text: str) -> list[tuple[str, float]]:
    """(URI, DURATION) of every EXT-X-PART of a media playlist, in playlist order."""
    found = []
    for attributes in _PART_LINE.findall(text):
        uri, duration = _URI.search(attributes), _DURATION.search(attributes)
        if uri is None or duration is None:
            raise ValueError(f"EXT-X-PART without URI or DURATION: {attributes!r}")
        found.append((uri.group(1), float(duration.group(1))))
    return found


@dataclass(frozen=True, slots=True)
class Part:
    arrival: float  # when the playlist that first listed it arrived (monotonic seconds)
    start: float  # media time of its start within its run (seconds)
    duration: float
    run: int  # 0, then one more after each skip


@dataclass
class PartLog:
    """One stream's parts as one watcher saw them, oldest first."""

    parts: list[Part] = field(default_factory=list)
    skips: int = 0
    _last: str | None = None  # the URI of the newest part seen
    _media: float = 0.0  # media time where the next new part starts
    _run: int = 0

    def add_playlist(self, text: str, arrival: float) -> int:
        """Take a playlist that arrived at `arrival`; returns how many new parts it listed.

        The first playlist only sets where the watcher starts (its parts were announced
        before the watcher came); so does the first after a skip."""
        listed = listed_parts(text)
        if not listed:
            return 0
        newest = listed[-1][0]
        if self._last is None:
            self._last = newest
            return 0
        position = next(
            (n for n in range(len(listed) - 1, -1, -1) if listed[n][0] == self._last), None
        )
        if position is None:
            self.skips += 1
            self._run += 1
            self._media = 0.0
            self._last = newest
            return 0
        new = listed[position + 1 :]
        for _, duration in new:
            self.parts.append(Part(arrival, self._media, duration, self._run))
            self._media += duration
        self._last = newest
        return len(new)


@dataclass(frozen=True, slots=True)
class Timed:
    """One part's figures, with T0 estimated over the parts measured."""

    stream: int
    arrival: float
    lateness: float  # arrival - (T0 + end), >= 0
    on_time: bool


def lateness(stream: int, parts: Iterable[Part], *, target: float, allowance: float) -> list[Timed]:
    """The lateness of each of `parts` (those of one stream in the measured window),
    T0 estimated per run from these same parts."""
    runs: dict[int, list[Part]] = {}
    for part in parts:
        runs.setdefault(part.run, []).append(part)
    timed = []
    for run in runs.values():
        t0 = min(p.arrival - (p.start + p.duration) for p in run)
        for p in run:
            timed.append(Timed(
                stream,
                p.arrival,
                p.arrival - (t0 + p.start + p.duration),
                p.arrival - (t0 + p.start) <= target + allowance + _TOLERANCE,
            ))  # fmt: skip
    timed.sort(key=lambda t: t.arrival)
    return timed


@dataclass
class Summary:
    parts: int
    late: int
    p50: float
    p99: float
    max: float
    streams_with_late: int
    worst_stream: int | None  # most late parts, then the largest lateness
    worst_late: int
    worst_max: float
    late_by_second: dict[int, int]  # seconds into the window: late parts then


def summarize(timed: Sequence[Timed], window_start: float) -> Summary:
    """All streams' timed parts, pooled."""
    if not timed:
        return Summary(0, 0, math.nan, math.nan, math.nan, 0, None, 0, math.nan, {})
    values = sorted(t.lateness for t in timed)
    late: dict[int, int] = {}
    worst: dict[int, float] = {}
    by_second: dict[int, int] = {}
    for t in timed:
        worst[t.stream] = max(worst.get(t.stream, 0.0), t.lateness)
        if not t.on_time:
            late[t.stream] = late.get(t.stream, 0) + 1
            second = int(t.arrival - window_start)
            by_second[second] = by_second.get(second, 0) + 1
    stream = max(worst, key=lambda s: (late.get(s, 0), worst[s]))
    return Summary(
        parts=len(timed),
        late=sum(late.values()),
        p50=percentile(values, 50),
        p99=percentile(values, 99),
        max=values[-1],
        streams_with_late=len(late),
        worst_stream=stream,
        worst_late=late.get(stream, 0),
        worst_max=worst[stream],
        late_by_second=dict(sorted(by_second.items())),
    )
