"""The SRT packet header codec (SRT §3): data and control packets, 16 bytes each.

Data:    0|seq31  PP|O|KK|R|msgno26  timestamp  destination-socket
Control: 1|type15|subtype16  type-specific  timestamp  destination-socket

Builders return bytes ready for the wire; parsers raise `PacketError` on anything
malformed, which the listener counts and drops.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

from .seqno import SEQ_MASK, seq_add, seq_diff

HEADER: Final = struct.Struct(">IIII")
HEADER_SIZE: Final = 16
_WORD: Final = struct.Struct(">I")

# Control packet types (SRT §3.2).
HANDSHAKE: Final = 0x0000
KEEPALIVE: Final = 0x0001
ACK: Final = 0x0002
NAK: Final = 0x0003
CONGESTION_WARNING: Final = 0x0004
SHUTDOWN: Final = 0x0005
ACKACK: Final = 0x0006
DROPREQ: Final = 0x0007
PEER_ERROR: Final = 0x0008
USER_DEFINED: Final = 0x7FFF
# Subtypes of USER_DEFINED used after the handshake (HSv4-style extended messages).
EXT_KMREQ: Final = 3
EXT_KMRSP: Final = 4

CONTROL_BIT: Final = 0x80000000
# Fields of the second word of a data packet.
KK_SHIFT: Final = 27
KK_MASK: Final = 0x3
RETRANSMITTED_BIT: Final = 1 << 26
LOSS_RANGE_BIT: Final = 0x80000000


class PacketError(ValueError):
    """A datagram that is not a well-formed SRT packet."""


def control_packet(
    control_type: int,
    subtype: int,
    info: int,
    timestamp: int,
    destination: int,
    payload: bytes = b"",
) -> bytes:
    first = CONTROL_BIT | (control_type & 0x7FFF) << 16 | (subtype & 0xFFFF)
    return (
        HEADER.pack(first, info & 0xFFFFFFFF, timestamp & 0xFFFFFFFF, destination & 0xFFFFFFFF)
        + payload
    )


def data_packet(
    seq: int,
    timestamp: int,
    destination: int,
    payload: bytes,
    *,
    msgno: int = 1,
    key: int = 0,
    retransmitted: bool = False,
) -> bytes:
    """A live-mode data packet (PP = 11: a whole message in one packet)."""
    second = 0xC0000000 | (key & KK_MASK) << KK_SHIFT | (msgno & 0x03FFFFFF)
    if retransmitted:
        second |= RETRANSMITTED_BIT
    return HEADER.pack(seq & SEQ_MASK, second, timestamp & 0xFFFFFFFF, destination) + payload


def full_ack(
    ack_number: int,
    timestamp: int,
    destination: int,
    *,
    ack_seq: int,
    rtt_us: int,
    rtt_var_us: int,
    buffer_free: int,
    packet_rate: int,
    capacity: int,
    byte_rate: int,
) -> bytes:
    """A full ACK (SRT §3.2.4): acknowledges everything before `ack_seq`."""
    body = struct.pack(
        ">IIIIIII",
        ack_seq & SEQ_MASK,
        max(0, rtt_us) & 0xFFFFFFFF,
        max(0, rtt_var_us) & 0xFFFFFFFF,
        max(2, buffer_free),
        max(0, packet_rate) & 0xFFFFFFFF,
        max(0, capacity) & 0xFFFFFFFF,
        max(0, byte_rate) & 0xFFFFFFFF,
    )
    return control_packet(ACK, 0, ack_number, timestamp, destination, body)


def encode_loss_list(ranges: Iterable[tuple[int, int]]) -> bytes:
    """NAK body (SRT App. A): a single number, or a range as first|MSB then last."""
    words = bytearray()
    for first, last in ranges:
        if first == last:
            words += _WORD.pack(first & SEQ_MASK)
        else:
            words += _WORD.pack(LOSS_RANGE_BIT | (first & SEQ_MASK))
            words += _WORD.pack(last & SEQ_MASK)
    return bytes(words)


def decode_loss_list(body: bytes) -> list[tuple[int, int]]:
    """Inverse of `encode_loss_list`; raises PacketError on a dangling range start."""
    if len(body) % 4:
        raise PacketError("loss list is not a whole number of words")
    words = [w for (w,) in _WORD.iter_unpack(body)]
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word & LOSS_RANGE_BIT:
            if i + 1 >= len(words) or words[i + 1] & LOSS_RANGE_BIT:
                raise PacketError("loss range without an end")
            first, last = word & SEQ_MASK, words[i + 1]
            if seq_diff(first, last) < 0:
                raise PacketError("loss range ends before it starts")
            ranges.append((first, last))
            i += 2
        else:
            ranges.append((word, word))
            i += 1
    return ranges


def compress_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending sequence numbers → inclusive (first, last) runs."""
    ranges: list[tuple[int, int]] = []
    first = last = -1
    for seq in seqs:
        if first >= 0 and seq == seq_add(last, 1):
            last = seq
            continue
        if first >= 0:
            ranges.append((first, last))
        first = last = seq
    if first >= 0:
        ranges.append((first, last))
    return ranges
