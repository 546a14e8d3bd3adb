"""Sans-I/O SRT (HSv5, live mode, receiving side): datagrams and time in, events out.

`SrtListener` is the whole surface an adapter needs; behind it, one module per job:
packet headers, the handshake and its extensions, stream IDs, HaiCrypt key
material and payload decryption, the receive buffer with ACK/NAK/TSBPD, and the
per-connection control logic.
"""

from .events import ConnectionClosed, ConnectionRequested, DataReceived, SrtEvent
from .listener import (
    REJ_BAD_MODE,
    REJ_BADSECRET,
    REJ_CONFLICT,
    REJ_FORBIDDEN,
    REJ_OVERLOAD,
    REJ_UNSECURE,
    ListenerConfig,
    SrtListener,
)
from .streamid import StreamRequest, parse_stream_id

__all__ = [
    "REJ_BADSECRET",
    "REJ_BAD_MODE",
    "REJ_CONFLICT",
    "REJ_FORBIDDEN",
    "REJ_OVERLOAD",
    "REJ_UNSECURE",
    "ConnectionClosed",
    "ConnectionRequested",
    "DataReceived",
    "ListenerConfig",
    "SrtEvent",
    "SrtListener",
    "StreamRequest",
    "parse_stream_id",
]
