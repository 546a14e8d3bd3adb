"""The RTMP core from the first byte a client sends: handshake, chunk streams,
commands in AMF0, FLV and Enhanced-RTMP audio/video tags.

The input is everything a publisher writes to the socket. It goes into a fresh
`RtmpServerConnection` whole and, for one input in four (chosen by a checksum, so
the choice is the same every time), a second time cut into reads of odd sizes. A
publish it asks for is accepted, as `live serve` does for a good key. The core turns
bad input into one `ProtocolError` event; one that reports an internal error, events
that differ between the two runs, or buffered bytes beyond the limits are findings.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Final

from fuzz import Finding
from live.protocols.rtmp import ProtocolError, PublishRequested, RtmpEvent, RtmpServerConnection
from live.protocols.rtmp.handshake import HANDSHAKE_SIZE

MAX_MESSAGE: Final = 64 * 1024
# A handshake waiting for its next packet, one incomplete chunk (header + at most one
# message) and two messages in reassembly: what the core may hold at any moment.
BUFFER_BOUND: Final = HANDSHAKE_SIZE + 1 + 18 + 3 * MAX_MESSAGE
# Read sizes for the cut-up run: one byte, a handshake packet, typical socket reads.
_READ_SIZES: Final = (1, HANDSHAKE_SIZE + 1, 7, 4096, 2, 300)
# Feeding an input twice halves the speed: the second, cut-up run is for some only.
_CUT_ONE_IN: Final = 4


def _fixed_random(size: int) -> bytes:
    return bytes(size)


def feed(reads: list[bytes]) -> list[RtmpEvent]:
    """The events of one connection given these reads, checking its limits."""
    core = RtmpServerConnection(
        app="live", max_message_size=MAX_MESSAGE, random_bytes=_fixed_random
    )
    events: list[RtmpEvent] = []
    for data in reads:
        core.receive_data(data)
        for event in core.events():
            events.append(event)
            if isinstance(event, ProtocolError) and event.reason.startswith("internal error"):
                raise Finding(event.reason)
            if isinstance(event, PublishRequested):
                core.accept_publish()
        core.data_to_send()
        if core.buffered_bytes > BUFFER_BOUND:
            raise Finding(f"{core.buffered_bytes} bytes buffered, limit {BUFFER_BOUND}")
    return events


def cut(data: bytes) -> list[bytes]:
    reads, start, sizes = [], 0, itertools.cycle(_READ_SIZES)
    while start < len(data):
        size = next(sizes)
        reads.append(data[start : start + size])
        start += size
    return reads


def check(data: bytes) -> None:
    whole = feed([data])
    if zlib.crc32(data) % _CUT_ONE_IN:
        return
    # Compared as text: an AMF number may be NaN, which equals nothing, not even itself.
    pieces = repr(feed(cut(data)))
    if repr(whole) != pieces:
        raise Finding(f"the events depend on how the input was read:\n{whole!r}\n{pieces}")
