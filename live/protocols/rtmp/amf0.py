"""AMF0: the value encoding of RTMP commands and metadata.

Only what RTMP publishers actually send is supported: number, boolean, string,
object, null, undefined, ECMA array, strict array, date, long string, XML document
and typed object. References and the AMF3 switch marker are refused with an
`AmfError` rather than guessed at.

Decoding maps AMF0 onto plain Python: numbers are always `float` (AMF0 has no
integer), objects are `dict`, ECMA arrays are `EcmaArray` (a `dict` that remembers
to encode back as an ECMA array), strict arrays are `list`. ECMA arrays are read
up to their `00 00 09` end marker and the declared count is ignored, because
encoders in the wild get it wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from .cursor import Cursor
from .errors import AmfError

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
REFERENCE: Final = 0x07
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C
XML_DOCUMENT: Final = 0x0F
TYPED_OBJECT: Final = 0x10
AVMPLUS_OBJECT: Final = 0x11

# Deep enough for any real metadata, shallow enough that hostile nesting cannot
# exhaust the Python stack.
MAX_DEPTH: Final = 32

_F64 = struct.Struct(">d")


class _Undefined:
    """The AMF0 `undefined` value, distinct from `null` (which is `None`)."""

    __slots__ = ()
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()


class EcmaArray(dict[str, Any]):
    """A string-keyed map that encodes as an AMF0 ECMA array instead of an object.

    `onMetaData` is conventionally an ECMA array; keeping the distinction lets a
    decoded message be re-encoded byte for byte.
    """


@dataclass(frozen=True, slots=True)
class AmfDate:
    """An AMF0 date: milliseconds since the Unix epoch plus a (reserved) zone."""

    milliseconds: float
    timezone: int = 0


# -- decoding ---------------------------------------------------------------------


def decode(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
    """Decode one value starting at `offset`; return it and the offset after it."""
    cur = Cursor(data, offset, error=AmfError)
    value = _decode(cur, 0)
    return value, cur.pos


def decode_all(data: bytes | bytearray | memoryview) -> list[Any]:
    """Decode consecutive values until the data is used up (a command or data message)."""
    cur = Cursor(data, error=AmfError)
    values: list[Any] = []
    while cur.remaining:
        values.append(_decode(cur, 0))
    return values


def _string(cur: Cursor, length: int) -> str:
    return cur.take(length).decode("utf-8", errors="replace")


def _decode(cur: Cursor, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise AmfError("AMF0 nesting too deep")
    marker = cur.u8()
    if marker == NUMBER:
        return cur.f64()
    if marker == BOOLEAN:
        return cur.u8() != 0
    if marker == STRING:
        return _string(cur, cur.u16())
    if marker == OBJECT:
        return _properties(cur, depth, dict(), allow_eof=False)
    if marker == NULL:
        return None
    if marker == UNDEFINED_MARKER:
        return UNDEFINED
    if marker == ECMA_ARRAY:
        cur.u32()  # the declared count: ignored, see the module docstring
        return _properties(cur, depth, EcmaArray(), allow_eof=True)
    if marker == STRICT_ARRAY:
        count = cur.u32()
        if count > cur.remaining:  # every value takes at least one byte
            raise AmfError(f"strict array count {count} exceeds the data")
        return [_decode(cur, depth + 1) for _ in range(count)]
    if marker == DATE:
        millis = cur.f64()
        return AmfDate(millis, cur.s16())
    if marker in (LONG_STRING, XML_DOCUMENT):
        return _string(cur, cur.u32())
    if marker == TYPED_OBJECT:
        _string(cur, cur.u16())  # the class name carries nothing RTMP needs
        return _properties(cur, depth, dict(), allow_eof=False)
    if marker == OBJECT_END:
        raise AmfError("object end marker outside an object")
    if marker == REFERENCE:
        raise AmfError("AMF0 references are not supported")
    if marker == AVMPLUS_OBJECT:
        raise AmfError("AMF3 values inside AMF0 are not supported")
    raise AmfError(f"unknown AMF0 marker 0x{marker:02x}")


def _properties(cur: Cursor, depth: int, out: dict[str, Any], *, allow_eof: bool) -> dict[str, Any]:
    """Read `key, value` pairs until the empty key followed by the end marker.

    With `allow_eof` (ECMA arrays) running out of data exactly at a property
    boundary also ends the map: some encoders drop the end marker when the
    array is the last thing in the message.
    """
    while True:
        if allow_eof and cur.remaining == 0:
            return out
        key_length = cur.u16()
        if key_length == 0:
            if allow_eof and cur.remaining == 0:
                return out
            if cur.peek_u8() == OBJECT_END:
                cur.u8()
                return out
        key = _string(cur, key_length)
        out[key] = _decode(cur, depth + 1)


# -- encoding ---------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """Encode one Python value as AMF0."""
    out = bytearray()
    _encode(value, out, 0)
    return bytes(out)


def encode_all(*values: Any) -> bytes:
    """Encode several values back to back, as a command or data message body."""
    out = bytearray()
    for value in values:
        _encode(value, out, 0)
    return bytes(out)


def _encode_key(key: str, out: bytearray) -> None:
    raw = key.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise AmfError("AMF0 property name longer than 65535 bytes")
    out += len(raw).to_bytes(2, "big")
    out += raw


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AmfError("value nested too deep for AMF0")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):  # before int: bool is an int subclass
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _F64.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += len(raw).to_bytes(2, "big")
        else:
            out.append(LONG_STRING)
            out += len(raw).to_bytes(4, "big")
        out += raw
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += _F64.pack(float(value.milliseconds))
        out += value.timezone.to_bytes(2, "big", signed=True)
    elif isinstance(value, dict):
        if isinstance(value, EcmaArray):
            out.append(ECMA_ARRAY)
            out += len(value).to_bytes(4, "big")
        else:
            out.append(OBJECT)
        for key, item in value.items():
            _encode_key(str(key), out)
            _encode(item, out, depth + 1)
        out += b"\x00\x00\x09"
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += len(value).to_bytes(4, "big")
        for item in value:
            _encode(item, out, depth + 1)
    else:
        raise AmfError(f"cannot encode {type(value).__name__} as AMF0")
