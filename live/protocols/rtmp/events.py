"""What an RTMP server connection reports to its adapter.

Small immutable records in the order things happened on the wire. Timestamps are
milliseconds, already extended past the 32-bit RTMP wrap; video `timestamp` is the
decode time and `timestamp + composition_time` the presentation time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """The client connected to the configured app; the core has already answered.
    The URL and properties may hold a stream key (some clients put it in tcUrl):
    kept out of repr, so a logged event shows no secret."""

    app: str
    tc_url: str = field(repr=False)
    flash_ver: str
    properties: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """The client wants to publish; answer with `accept_publish` or `reject_publish`.

    `stream_key` is the URL-decoded publish name before any "?", without a
    leading "<app>/"; `query` is the raw text after the "?" ("" if none). Both are
    secrets (a query often carries a password), kept out of repr.
    """

    stream_id: int
    stream_key: str = field(repr=False)
    query: str = field(repr=False)
    publish_type: str


@dataclass(frozen=True, slots=True)
class MetadataReceived:
    """`onMetaData`, with or without `@setDataFrame`."""

    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """A video decoder configuration record (avcC, hvcC, av1C, vpcC) as received."""

    codec: str
    config: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One coded video frame; for h264/hevc, length-prefixed NAL units."""

    codec: str
    timestamp: int
    composition_time: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class VideoEndOfSequence:
    timestamp: int


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """An audio decoder configuration (an AudioSpecificConfig for AAC) as received."""

    codec: str
    config: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One raw audio frame (no ADTS header)."""

    codec: str
    timestamp: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PublishEnded:
    """The client ended the publish (`reason`: FCUnpublish, deleteStream, closeStream)."""

    stream_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The input was malformed or refused; the connection is closed after this.

    `limit` names the configured limit the input went over ("message_size",
    "chunk_size"), None for input that is simply malformed."""

    reason: str
    limit: str | None = None


RtmpEvent = (
    ConnectRequested
    | PublishRequested
    | MetadataReceived
    | VideoConfig
    | VideoFrame
    | VideoEndOfSequence
    | AudioConfig
    | AudioFrame
    | PublishEnded
    | ProtocolError
)
