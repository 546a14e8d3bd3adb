"""A bounds-checked reader over a byte string.

The parsers (AMF0, FLV tags, aggregate messages) all walk big-endian fields through
untrusted bytes. Doing that through one small reader means every short read becomes
the caller's own `RtmpError` subclass instead of an `IndexError` or `struct.error`
leaking out of the core.
"""

from __future__ import annotations

import struct

from .errors import RtmpError

_F64 = struct.Struct(">d")


class Cursor:
    """Sequential big-endian reads that raise `error` when the data runs out."""

    __slots__ = ("_data", "_error", "pos")

    def __init__(
        self, data: bytes | bytearray | memoryview, pos: int = 0, error: type[RtmpError] = RtmpError
    ) -> None:
        self._data = bytes(data)
        self._error = error
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise self._error(f"truncated: needed {n} bytes, {self.remaining} left")
        start = self.pos
        self.pos += n
        return self._data[start : self.pos]

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def peek_u8(self) -> int:
        if self.remaining < 1:
            raise self._error("truncated: needed 1 byte, 0 left")
        return self._data[self.pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def s16(self) -> int:
        return int.from_bytes(self.take(2), "big", signed=True)

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def s24(self) -> int:
        return int.from_bytes(self.take(3), "big", signed=True)

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def f64(self) -> float:
        return float(_F64.unpack(self.take(8))[0])
