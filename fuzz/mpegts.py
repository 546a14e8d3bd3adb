"""The MPEG-TS path of SRT ingest: PyAV's demuxer, then Annex B video and ADTS audio
turned into the server's tracks and packets.

The input is a transport stream as a publisher sends it inside SRT. It passes the
`TsGuard` the ingest puts in front of FFmpeg (up to where the guard stops it), then
is read through the very functions the ingest's demuxer thread runs (`open_ts`,
`converter_for`, `demux_items`); a stream PyAV cannot read ends with one of
`DEMUX_ERRORS`, which the ingest reports as the end of that stream. Any other
exception is a finding, and so is a video packet that is not the sequence of
length-prefixed NAL units every later stage (HLS parts, recordings) expects. Only
our code is instrumented for coverage: PyAV's C demuxer runs as it is, so a crash
in it shows up as the process dying.
"""

from __future__ import annotations

import io
from typing import Final

from fuzz import Finding
from live.ingest.mpegts import DEMUX_ERRORS, converter_for, demux_items, open_ts
from live.ingest.ts_guard import TsGuard
from live.media.packet import MediaPacket

_SRT_PAYLOAD: Final = 1316


def check(data: bytes) -> None:
    guard, passed = TsGuard(), []
    for start in range(0, len(data), _SRT_PAYLOAD):  # as SRT delivers it
        packets, refused = guard.feed(data[start : start + _SRT_PAYLOAD])
        passed.append(packets)
        if refused:
            break  # the demuxer reads what came before, then ends
    data = b"".join(passed)
    try:
        container = open_ts(io.BytesIO(data))
    except DEMUX_ERRORS:
        return
    try:
        for items in demux_items(container, converter_for(container)):
            for item in items:
                if isinstance(item, MediaPacket) and item.kind == "video":
                    check_nal_units(item.data)
    except DEMUX_ERRORS:
        return
    finally:
        container.close()


def check_nal_units(sample: bytes) -> None:
    """`sample` is made of whole (4-byte length, NAL unit) pairs, none empty."""
    offset = 0
    while offset < len(sample):
        length = int.from_bytes(sample[offset : offset + 4], "big")
        if length == 0 or offset + 4 + length > len(sample):
            raise Finding(f"a NAL unit length of {length} at {offset} in {len(sample)} bytes")
        offset += 4 + length
