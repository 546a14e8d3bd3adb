"""Extending 32-bit RTMP timestamps to a 64-bit timeline.

RTMP timestamps are milliseconds modulo 2^32, so they wrap after 49.7 days, and a
jump from 0xFFFFFFF0 to 0x10 is 32 ms forward, not 49 days back. Each step is read
as the signed difference closest to zero, which also lets audio and video arrive
slightly out of order. One unwrapper is kept per message type, so audio and video
never disturb each other.
"""

from __future__ import annotations

from typing import Final

_WRAP: Final = 1 << 32
_HALF: Final = 1 << 31


class TimestampUnwrapper:
    """Maps successive 32-bit timestamps onto one continuous integer timeline."""

    __slots__ = ("_last", "_last32")

    def __init__(self) -> None:
        self._last32: int | None = None
        self._last = 0

    def unwrap(self, timestamp32: int) -> int:
        timestamp32 &= _WRAP - 1
        if self._last32 is None:
            value = timestamp32
        else:
            delta = (timestamp32 - self._last32) & (_WRAP - 1)
            if delta >= _HALF:
                delta -= _WRAP
            value = self._last + delta
        self._last32 = timestamp32
        self._last = value
        return value
