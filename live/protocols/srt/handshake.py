"""The SRT handshake body (SRT §3.2.1) and its HSv5 extension blocks.

The 48-byte handshake is followed, in an HSv5 conclusion, by blocks of
`{type:16, length-in-words:16, words...}`. The Stream ID block is special: libsrt
copies the string into host-order 32-bit words before the whole packet is put in
network order, so on the wire every 4-byte group of the string is reversed
(§3.2.1.3). The KM block, on the other hand, travels in network order as is.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Final

from .packets import PacketError

_BODY: Final = struct.Struct(">IHHIIIIII16s")
BODY_SIZE: Final = _BODY.size  # 48

# Handshake types.
INDUCTION: Final = 1
WAVEAHAND: Final = 0
CONCLUSION: Final = 0xFFFFFFFF
AGREEMENT: Final = 0xFFFFFFFE
DONE: Final = 0xFFFFFFFD
FAILURE_BASE: Final = 1000  # a rejection is 1000 + reason

SRT_MAGIC: Final = 0x4A17
UDT_DGRAM: Final = 2

# Extension flags in a conclusion's extension field.
EXT_FLAG_HSREQ: Final = 0x1
EXT_FLAG_KMREQ: Final = 0x2
EXT_FLAG_CONFIG: Final = 0x4

# Extension block types.
EXT_HSREQ: Final = 1
EXT_HSRSP: Final = 2
EXT_KMREQ: Final = 3
EXT_KMRSP: Final = 4
EXT_SID: Final = 5
EXT_CONGESTION: Final = 6
EXT_FILTER: Final = 7
EXT_GROUP: Final = 8

# SRT flags in HSREQ/HSRSP.
FLAG_TSBPDSND: Final = 0x01
FLAG_TSBPDRCV: Final = 0x02
FLAG_CRYPT: Final = 0x04
FLAG_TLPKTDROP: Final = 0x08
FLAG_PERIODICNAK: Final = 0x10
FLAG_REXMITFLG: Final = 0x20
FLAG_STREAM: Final = 0x40
FLAG_PACKET_FILTER: Final = 0x80

MAX_STREAM_ID_BYTES: Final = 512


@dataclass(slots=True)
class Handshake:
    version: int
    encryption: int  # upper half of the "type" word: advertised PBKEYLEN / 8
    extension: int  # lower half: SRT magic (induction) or extension flags
    isn: int
    mss: int
    flow_window: int
    hs_type: int
    socket_id: int
    cookie: int
    peer_ip: bytes = bytes(16)
    extensions: list[tuple[int, bytes]] = field(default_factory=list)

    def encode(self) -> bytes:
        out = bytearray(
            _BODY.pack(
                self.version,
                self.encryption,
                self.extension,
                self.isn,
                self.mss,
                self.flow_window,
                self.hs_type,
                self.socket_id,
                self.cookie,
                self.peer_ip,
            )
        )
        for ext_type, content in self.extensions:
            if len(content) % 4:
                raise ValueError("extension content must be whole 32-bit words")
            out += struct.pack(">HH", ext_type, len(content) // 4) + content
        return bytes(out)

    def extension_block(self, ext_type: int) -> bytes | None:
        for block_type, content in self.extensions:
            if block_type == ext_type:
                return content
        return None


def parse_handshake(body: bytes) -> Handshake:
    """Read a handshake control packet's body (without the 16-byte header)."""
    if len(body) < BODY_SIZE:
        raise PacketError(f"handshake body of {len(body)} bytes, need {BODY_SIZE}")
    fields = _BODY.unpack_from(body)
    extensions: list[tuple[int, bytes]] = []
    offset = BODY_SIZE
    while offset + 4 <= len(body):
        ext_type, words = struct.unpack_from(">HH", body, offset)
        offset += 4
        end = offset + 4 * words
        if end > len(body):
            raise PacketError(f"handshake extension {ext_type} runs past the packet")
        extensions.append((ext_type, body[offset:end]))
        offset = end
    return Handshake(*fields, extensions=extensions)


@dataclass(frozen=True, slots=True)
class SrtOptions:
    """The content of an HSREQ/HSRSP block."""

    version: int
    flags: int
    recv_latency_ms: int  # upper 16 bits: the sender of this block's receiving latency
    send_latency_ms: int  # lower 16 bits: its sending (peer) latency

    def encode(self) -> bytes:
        latency = (self.recv_latency_ms & 0xFFFF) << 16 | (self.send_latency_ms & 0xFFFF)
        return struct.pack(">III", self.version, self.flags, latency)


def parse_srt_options(content: bytes) -> SrtOptions:
    if len(content) < 12:
        raise PacketError("HSREQ block shorter than 3 words")
    version, flags, latency = struct.unpack_from(">III", content)
    return SrtOptions(version, flags, latency >> 16, latency & 0xFFFF)


def decode_stream_id(content: bytes) -> str:
    """Stream ID block → text: reverse each 4-byte group, strip the NUL padding."""
    if len(content) % 4:
        raise PacketError("stream id block is not whole words")
    if len(content) > MAX_STREAM_ID_BYTES:
        raise PacketError("stream id longer than 512 bytes")
    raw = b"".join(content[i : i + 4][::-1] for i in range(0, len(content), 4))
    try:
        return raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as error:
        raise PacketError("stream id is not UTF-8") from error


def encode_stream_id(text: str) -> bytes:
    """Text → Stream ID block content, as a libsrt caller writes it."""
    raw = text.encode("utf-8")
    raw += b"\x00" * (-len(raw) % 4)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


def decode_string_block(content: bytes) -> str:
    """Congestion/filter blocks carry short strings the same way as the Stream ID."""
    return decode_stream_id(content)


def ip_field(host: str) -> bytes:
    """The 16-byte peer IP field: IPv4 in the first word (host order, as libsrt
    writes it), IPv6 as its 16 bytes."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return bytes(16)
    if address.version == 4:
        return address.packed[::-1] + bytes(12)
    return address.packed
