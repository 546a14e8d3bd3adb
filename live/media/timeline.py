"""One continuous output timeline from whatever timestamps publishers send.

Publishers start at random offsets, OBS restarts its clock at 0 when it reconnects,
audio and video arrive slightly out of order, and RTMP only has milliseconds. The
packager needs timestamps in each track's timescale that start near zero, never go
backwards and carry each sample's exact duration (the next sample's DTS minus its
own), so every sample is held back until the next one of its track arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from live.media.packet import MediaPacket

# Headroom before the first sample so that composition offsets and the other
# track's slightly earlier first sample never need a negative decode time.
START_OFFSET_S = 10.0
# A forward step larger than this is a publisher clock jump, not a gap in media.
MAX_FORWARD_JUMP_S = 10.0


@dataclass(frozen=True, slots=True)
class TimedSample:
    """A packet with timestamps and duration in its track's timescale."""

    packet: MediaPacket
    dts: int
    pts: int
    duration: int


class _TrackClock:
    def __init__(self, timescale: int) -> None:
        self.timescale = timescale
        self.held: tuple[MediaPacket, int, int] | None = None
        self.last_dts: int | None = None
        self.last_duration = 0

    def end_seconds(self) -> float:
        if self.last_dts is None:
            return 0.0
        return (self.last_dts + self.last_duration) / self.timescale


class Timeline:
    """Maps packets of every track onto the shared output timeline."""

    def __init__(self, timescales: dict[str, int]) -> None:
        self._clocks = {kind: _TrackClock(scale) for kind, scale in timescales.items()}
        self._origin: float | None = None  # input seconds that map to START_OFFSET_S
        self._anchor = START_OFFSET_S
        self.jumps = 0

    def retrack(self, timescales: dict[str, int]) -> None:
        """The set of tracks or a timescale changed (a new init section) while the
        source clock goes on: keep the origin, start new clocks where needed."""
        clocks = {}
        for kind, scale in timescales.items():
            old = self._clocks.get(kind)
            if old is not None and old.timescale == scale:
                clocks[kind] = old
                continue
            clock = _TrackClock(scale)
            if old is not None and old.last_dts is not None:
                clock.last_dts = round(old.last_dts * scale / old.timescale)
                clock.last_duration = round(old.last_duration * scale / old.timescale)
            clocks[kind] = clock
        self._clocks = clocks

    def reanchor(self) -> None:
        """The source's clock starts afresh (a new publisher, or a republish):
        its next packet continues where the output timeline has got to."""
        self._origin = None
        self._anchor = max(
            [START_OFFSET_S] + [clock.end_seconds() for clock in self._clocks.values()]
        )

    def push(self, packet: MediaPacket) -> TimedSample | None:
        """Take one packet; return the previous one of its track, now complete."""
        clock = self._clocks.get(packet.kind)
        if clock is None:
            return None
        input_seconds = packet.dts_seconds
        if self._origin is None:
            self._origin = input_seconds - self._anchor
        dts = round((input_seconds - self._origin) * clock.timescale)
        reference = clock.held[1] if clock.held else clock.last_dts
        if reference is not None:
            step = dts - reference
            if step < -clock.timescale or step > MAX_FORWARD_JUMP_S * clock.timescale:
                # A clock jump: carry on from where this track had got to.
                self.jumps += 1
                nominal = clock.last_duration or round(clock.timescale / 30)
                self._origin = input_seconds - (reference + nominal) / clock.timescale
                dts = reference + nominal
            elif step <= 0:
                dts = reference + 1  # never backwards, never two samples at one time
        composition = round((packet.pts_seconds - input_seconds) * clock.timescale)
        ready = None
        if clock.held is not None:
            held_packet, held_dts, held_pts = clock.held
            ready = self._complete(clock, held_packet, held_dts, held_pts, dts - held_dts)
        clock.held = (packet, dts, dts + composition)
        return ready

    def flush(self) -> list[TimedSample]:
        """Release every held packet (end of session), with its last known duration."""
        out = []
        for clock in self._clocks.values():
            if clock.held is not None:
                packet, dts, pts = clock.held
                duration = clock.last_duration or round(clock.timescale / 30)
                out.append(self._complete(clock, packet, dts, pts, duration))
                clock.held = None
        clocks = self._clocks
        return sorted(out, key=lambda sample: sample.dts / clocks[sample.packet.kind].timescale)

    @staticmethod
    def _complete(
        clock: _TrackClock, packet: MediaPacket, dts: int, pts: int, duration: int
    ) -> TimedSample:
        duration = max(1, duration)
        clock.last_dts = dts
        clock.last_duration = duration
        return TimedSample(packet, dts, pts, duration)
