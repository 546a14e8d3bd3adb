"""Fewer, larger reads from a publisher's socket, by its receive low-water mark.

A publisher writes each RTMP chunk as it goes (a video frame in a few chunks, each
audio frame on its own), so a socket read often finds a single chunk, and every read
wakes the whole process: at one stream, the wake-ups cost more than the media work.
The kernel can wait instead: with SO_RCVLOWAT set, the socket only becomes readable
once that many bytes are queued (or at end of stream, or on error, whatever the mark).

The mark is the larger of
- what the message being received still lacks (waiting for it costs nothing: half a
  frame is of no use), and
- `coalesce_s` (default `COALESCE_S`) worth of the publisher's recent byte rate, so
  that an audio frame waits for the video frame that follows it instead of being
  read on its own. This delays a frame by at most about `coalesce_s` at a steady
  rate; 0 turns it off.

If the rate drops (a still scene, a publisher that stops to send a command and wait
for the reply), bytes could sit under the mark: a timer drops the mark to 1 once
nothing was read for `STALL_S`, so nothing waits much longer than that. The timer is
armed once and, when it fires after more reads, armed again for what is left of
`STALL_S` since the last one: about one timer per `STALL_S` while media flows,
where cancelling and making one on every read (tens a second per publisher) cost
a few per cent of the ingest's CPU. (One periodic timer for all connections would
wake the process ten times a second for nothing.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

COALESCE_S = 0.015
STALL_S = 0.1
RATE_WINDOW_S = 1.0
# A large keyframe is still read in a few parts rather than waited for whole; the
# mark must stay well under the socket's receive buffer.
MAX_LOW_WATER = 64 * 1024


Scheduler = Callable[[float, Callable[[], None]], asyncio.TimerHandle]


class LowWaterMark:
    """The receive low-water mark of one TCP socket (`sock` None: a no-op)."""

    __slots__ = (
        "_call_later",
        "_clock",
        "_coalesce",
        "_coalesce_s",
        "_last_read",
        "_rate_bytes",
        "_rate_since",
        "_socket",
        "_stall",
        "value",
    )

    def __init__(
        self,
        sock: socket.socket | None,
        now: float,
        call_later: Scheduler,
        coalesce_s: float = COALESCE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`now` and `clock` on the clock of `call_later`'s loop (monotonic)."""
        self._socket = sock
        self._call_later = call_later
        self._clock = clock
        self._last_read = now
        self.value = 1
        self._coalesce_s = coalesce_s
        self._coalesce = 0  # coalesce_s of the byte rate: 0 until measured
        self._rate_bytes = 0
        self._rate_since = now
        self._stall: asyncio.TimerHandle | None = None

    def after_read(self, wanted: int, now: float, bytes_received: int) -> None:
        """Set the mark after a read. `wanted`: what the message being received still
        lacks; `bytes_received`: the connection's total so far (for its rate)."""
        if now - self._rate_since >= RATE_WINDOW_S:
            rate = (bytes_received - self._rate_bytes) / (now - self._rate_since)
            self._coalesce = int(rate * self._coalesce_s)
            self._rate_bytes, self._rate_since = bytes_received, now
        self._last_read = now
        self._set(max(wanted, self._coalesce))
        if self.value > 1 and self._stall is None:
            self._stall = self._call_later(STALL_S, self._release)

    def close(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _release(self) -> None:
        """Nothing read for STALL_S: take whatever sits under the mark. Read since:
        wait for the rest of STALL_S after that read."""
        self._stall = None
        idle = self._clock() - self._last_read
        if idle < STALL_S and self.value > 1:
            self._stall = self._call_later(STALL_S - idle, self._release)
            return
        self._set(1)

    def _set(self, value: int) -> None:
        value = max(1, min(value, MAX_LOW_WATER))
        if value == self.value or self._socket is None:
            return
        try:
            # Linux re-checks readability at once when the mark changes.
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, value)
        except OSError:
            self._socket = None  # not a socket that takes a mark: read what comes
            return
        self.value = value
