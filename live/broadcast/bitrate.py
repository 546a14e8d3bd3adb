"""A publisher's bitrate against its limit, in O(1) per packet.

The rate is averaged over a window of a few seconds, so a keyframe (a burst many
times the average) never trips it, while a publisher that keeps sending more than
the limit is caught within one window. A window that already holds more than the
limit allows for the whole window is over at once: a flood is not waited out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BitrateLimit:
    max_kbps: int
    window_s: float = 5.0

    def describe(self, measured_kbps: int) -> str:
        """What a disconnected publisher's operator reads."""
        return (
            f"bitrate {measured_kbps} kbps is over this server's limit of "
            f"{self.max_kbps} kbps (averaged over {self.window_s:g} s)"
        )


class BitrateMeter:
    def __init__(self, limit: BitrateLimit, now: float) -> None:
        self.limit = limit
        self._budget_bits = limit.max_kbps * 1000 * limit.window_s
        self._window_start = now
        self._bits = 0

    def add(self, size: int, now: float) -> int | None:
        """Count `size` bytes received at `now`; the measured rate in kbps when it
        is over the limit, else None."""
        self._bits += size * 8
        elapsed = now - self._window_start
        if self._bits > self._budget_bits:  # over even if the window ran to its end
            return round(self._bits / max(elapsed, self.limit.window_s) / 1000)
        if elapsed < self.limit.window_s:
            return None
        kbps = self._bits / elapsed / 1000
        self._window_start, self._bits = now, 0
        return round(kbps) if kbps > self.limit.max_kbps else None
