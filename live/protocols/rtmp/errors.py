"""The one exception family the RTMP core raises internally.

Every parser in this package reports malformed or unsupported input by raising a
subclass of `RtmpError`. The connection catches exactly this family and turns it
into a `ProtocolError` event, so a bad byte from the network can never escape
`receive_data` as an exception.
"""

from __future__ import annotations


class RtmpError(Exception):
    """Malformed or unsupported RTMP input."""


class HandshakeError(RtmpError):
    """The C0/C1/C2 exchange was not one we can serve."""


class ChunkError(RtmpError):
    """The chunk stream broke its framing rules or our safety limits."""


class LimitExceeded(ChunkError):
    """Well-formed input over one of our configured limits (message or chunk size);
    `limit` names which, so the adapter can count it."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class AmfError(RtmpError):
    """An AMF0 value could not be decoded or encoded."""


class FlvError(RtmpError):
    """An audio or video tag body was malformed or used an unsupported codec."""
