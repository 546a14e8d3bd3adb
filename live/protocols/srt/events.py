"""What the SRT listener reports to its adapter, in the order it happened.

Every event names a connection by `handle`, which is the socket ID the listener
gave it (also the destination ID the caller puts on its packets).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ConnectionRequested:
    """A caller's conclusion handshake, waiting for `accept` or `reject`.

    The caller repeats its conclusion every 250 ms until answered; the repeats are
    absorbed by the listener, so this event comes once per connection attempt.
    The stream id holds the stream key: both are kept out of repr.
    """

    handle: int
    peer: tuple[str, int]
    stream_id: str = field(repr=False)
    stream_key: str = field(repr=False)
    mode: str
    encrypted: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Payload bytes (MPEG-TS, usually 1316 bytes a packet) in sequence order, at
    their TSBPD delivery time; packets lost for good are simply absent."""

    handle: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is gone: `shutdown` (the caller said so), `timeout` (5 s of
    silence), `closed` (the adapter closed it) or `error`."""

    handle: int
    reason: str


@dataclass(frozen=True, slots=True)
class HandshakeRefused:
    """A caller was refused because `max_handshakes` were waiting already (it got
    REJ_OVERLOAD); nothing of it is kept."""

    peer: tuple[str, int]
    waiting: int


SrtEvent = ConnectionRequested | DataReceived | ConnectionClosed | HandshakeRefused
