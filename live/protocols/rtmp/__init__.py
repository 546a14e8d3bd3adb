"""Sans-I/O RTMP ingest: bytes in, events and bytes out.

`RtmpServerConnection` is the whole public surface an adapter needs; the modules
behind it each do one job (handshake, chunk streams, AMF0, FLV tag bodies).
"""

from .connection import RtmpServerConnection
from .events import (
    AudioConfig,
    AudioFrame,
    ConnectRequested,
    MetadataReceived,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RtmpEvent,
    VideoConfig,
    VideoEndOfSequence,
    VideoFrame,
)

__all__ = [
    "AudioConfig",
    "AudioFrame",
    "ConnectRequested",
    "MetadataReceived",
    "ProtocolError",
    "PublishEnded",
    "PublishRequested",
    "RtmpEvent",
    "RtmpServerConnection",
    "VideoConfig",
    "VideoEndOfSequence",
    "VideoFrame",
]
