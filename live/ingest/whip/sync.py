"""Audio/video sync for WebRTC: RTP timestamps onto one clock via sender reports.

Each RTP stream starts at a random timestamp with its own clock rate, so the
only link between audio and video is the RTCP sender report (RFC 3550 6.4.1):
"RTP timestamp T was wall-clock time W at the sender". Frames of a track wait
until its first report (or, if a sender never sends one, until a short fallback
where arrival time stands in), then every track is put on a timeline that starts
at the earliest frame. Pure: time comes in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A sender that has not reported within this long is timed by arrival instead.
REPORT_WAIT_S = 1.5
# Frames held while waiting, per track (about 5 s of 30 fps video or 20 ms audio).
MAX_PENDING = 256


class RtpUnwrapper:
    """32-bit RTP timestamps → a monotonic-ish 64-bit count (reordering tolerated)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def extend(self, timestamp: int) -> int:
        timestamp &= 0xFFFFFFFF
        if self._last is None:
            self._last = timestamp
            return timestamp
        base = self._last & ~0xFFFFFFFF
        candidates = (base - 2**32 + timestamp, base + timestamp, base + 2**32 + timestamp)
        value = min(candidates, key=lambda c: abs(c - self._last))  # type: ignore[operator]
        if value > self._last:
            self._last = value
        return value

    def peek(self, timestamp: int) -> int:
        """Extend without moving the reference (for a sender report's timestamp)."""
        if self._last is None:
            return timestamp & 0xFFFFFFFF
        saved = self._last
        value = self.extend(timestamp)
        self._last = saved
        return value


@dataclass
class _Track:
    clock_rate: int
    unwrapper: RtpUnwrapper = field(default_factory=RtpUnwrapper)
    anchor: tuple[float, int] | None = None  # (wall seconds, extended RTP timestamp)
    first_arrival: tuple[float, int] | None = None
    pending: list[tuple[int, object]] = field(default_factory=list)

    def wall(self, extended: int) -> float:
        assert self.anchor is not None
        return self.anchor[0] + (extended - self.anchor[1]) / self.clock_rate


class MediaSync:
    """Turns (track, RTP timestamp, item) into (track, seconds on the shared timeline, item).

    `push` and `poll` return what is ready, in arrival order per track.
    """

    def __init__(self, clock_rates: dict[str, int], report_wait_s: float = REPORT_WAIT_S) -> None:
        self._tracks = {kind: _Track(rate) for kind, rate in clock_rates.items()}
        self._report_wait_s = report_wait_s
        self.origin: float | None = None
        self.dropped = 0

    def on_report(self, kind: str, wall: float, rtp_timestamp: int) -> None:
        track = self._tracks.get(kind)
        if track is not None and track.anchor is None:
            track.anchor = (wall, track.unwrapper.peek(rtp_timestamp))

    def push(
        self, kind: str, rtp_timestamp: int, item: object, now_wall: float
    ) -> list[tuple[str, float, object]]:
        track = self._tracks[kind]
        extended = track.unwrapper.extend(rtp_timestamp)
        if track.first_arrival is None:
            track.first_arrival = (now_wall, extended)
        if len(track.pending) >= MAX_PENDING:
            track.pending.pop(0)
            self.dropped += 1
        track.pending.append((extended, item))
        return self.poll(now_wall)

    def poll(self, now_wall: float) -> list[tuple[str, float, object]]:
        for track in self._tracks.values():
            if (
                track.anchor is None
                and track.first_arrival is not None
                and now_wall - track.first_arrival[0] >= self._report_wait_s
            ):
                track.anchor = track.first_arrival  # no report: time by arrival
        if self.origin is None:
            started = [t for t in self._tracks.values() if t.first_arrival is not None]
            if not started or any(t.anchor is None for t in started):
                return []
            first = min(t.first_arrival[0] for t in started)  # type: ignore[index]
            if len(started) < len(self._tracks) and now_wall - first < self._report_wait_s:
                return []  # the other track may yet start: wait for it a little
            self.origin = min(t.wall(t.pending[0][0]) for t in started if t.pending)
        out = []
        for kind, track in self._tracks.items():
            if track.anchor is None:
                continue
            for extended, item in track.pending:
                out.append((kind, track.wall(extended) - self.origin, item))
            track.pending.clear()
        return out
