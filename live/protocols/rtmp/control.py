"""Message type ids and the payloads of protocol control and user control messages.

Kept apart from the connection so the state machine reads as decisions, not as
byte packing.
"""

from __future__ import annotations

from typing import Final

from .errors import RtmpError

# Message type ids (RTMP 1.0 §5.4, §7.1).
SET_CHUNK_SIZE: Final = 1
ABORT: Final = 2
ACKNOWLEDGEMENT: Final = 3
USER_CONTROL: Final = 4
WINDOW_ACK_SIZE: Final = 5
SET_PEER_BANDWIDTH: Final = 6
AUDIO: Final = 8
VIDEO: Final = 9
DATA_AMF3: Final = 15
SHARED_OBJECT_AMF3: Final = 16
COMMAND_AMF3: Final = 17
DATA_AMF0: Final = 18
SHARED_OBJECT_AMF0: Final = 19
COMMAND_AMF0: Final = 20
AGGREGATE: Final = 22

# User control event types (§7.1.7).
STREAM_BEGIN: Final = 0
STREAM_EOF: Final = 1
SET_BUFFER_LENGTH: Final = 3
PING_REQUEST: Final = 6
PING_RESPONSE: Final = 7

PEER_BANDWIDTH_DYNAMIC: Final = 2


def u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def set_peer_bandwidth(size: int, limit_type: int = PEER_BANDWIDTH_DYNAMIC) -> bytes:
    return u32(size) + bytes([limit_type])


def user_control(event_type: int, value: int) -> bytes:
    """A user control payload whose event data is one 32-bit value (all we send)."""
    return event_type.to_bytes(2, "big") + u32(value)


def parse_u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise RtmpError(f"{what} message shorter than 4 bytes")
    return int.from_bytes(payload[:4], "big")


def parse_user_control(payload: bytes) -> tuple[int, bytes]:
    """Split a user control payload into its event type and event data."""
    if len(payload) < 2:
        raise RtmpError("user control message shorter than 2 bytes")
    return int.from_bytes(payload[:2], "big"), payload[2:]
