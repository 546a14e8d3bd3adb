"""Aggregate messages (type 22): several FLV tags packed into one RTMP message.

Each inner tag is `type(1) size(3) timestamp(3) timestamp_ext(1) stream_id(3)
body(size) back_pointer(4)`. Inner timestamps are only meaningful relative to the
first one: the first inner tag takes the aggregate message's own timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cursor import Cursor
from .errors import RtmpError

_TAG_HEADER_SIZE = 11


@dataclass(frozen=True, slots=True)
class InnerTag:
    type_id: int
    timestamp: int  # 32-bit, already rebased onto the aggregate's timestamp
    body: bytes


def split_aggregate(payload: bytes, timestamp: int) -> list[InnerTag]:
    cur = Cursor(payload, error=RtmpError)
    tags: list[InnerTag] = []
    first: int | None = None
    while cur.remaining:
        if cur.remaining < _TAG_HEADER_SIZE:
            raise RtmpError("truncated tag header in aggregate message")
        type_id = cur.u8()
        size = cur.u24()
        inner = cur.u24() | (cur.u8() << 24)
        cur.u24()  # stream id: always the aggregate's own
        body = cur.take(size)
        if cur.remaining >= 4:
            cur.u32()  # back pointer
        elif cur.remaining:
            raise RtmpError("truncated back pointer in aggregate message")
        if first is None:
            first = inner
        tags.append(InnerTag(type_id, (timestamp + inner - first) & 0xFFFFFFFF, body))
    return tags
