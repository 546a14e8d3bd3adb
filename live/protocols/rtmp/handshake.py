"""The server side of the RTMP handshake (RTMP 1.0 §5.2), simple form.

C0 (version) and C1 (1536 bytes) in, S0 + S1 + S2 out, then wait for C2.
S1 is `time(4) | zero(4) | random(1528)`: the zero in bytes 4-7 is what makes
librtmp and FFmpeg fall back to the plain handshake instead of expecting a digest,
so their "complex" C1 is simply echoed back in S2 like any other.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import Final

from .errors import HandshakeError

RTMP_VERSION: Final = 3
HANDSHAKE_SIZE: Final = 1536
RANDOM_SIZE: Final = HANDSHAKE_SIZE - 8


class HandshakeState(enum.Enum):
    WAIT_C0C1 = "wait_c0c1"
    WAIT_C2 = "wait_c2"
    DONE = "done"


class ServerHandshake:
    """Consumes handshake bytes from the front of a buffer and produces S0/S1/S2.

    Randomness is injected (`random_bytes`, default `os.urandom`) so tests get
    deterministic S1 bytes; the time field is always 0 because the core has no clock.
    """

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random_bytes = random_bytes
        self.state = HandshakeState.WAIT_C0C1

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    def receive(self, data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
        """Use what it can from the start of `data`.

        Returns how many bytes were consumed and what to send back. Bytes after C2
        are not touched: they are the first chunks and belong to the chunk reader.
        """
        if self.state is HandshakeState.WAIT_C0C1:
            if len(data) >= 1 and data[0] != RTMP_VERSION:
                raise HandshakeError(f"unsupported RTMP version {data[0]}")
            if len(data) < 1 + HANDSHAKE_SIZE:
                return 0, b""
            c1 = bytes(data[1 : 1 + HANDSHAKE_SIZE])
            random = self._random_bytes(RANDOM_SIZE)
            if len(random) != RANDOM_SIZE:
                raise ValueError("random_bytes returned the wrong number of bytes")
            s1 = bytes(8) + random
            self.state = HandshakeState.WAIT_C2
            consumed = 1 + HANDSHAKE_SIZE
            # S2 echoes C1 (time, time2 and random) byte for byte.
            return consumed, bytes([RTMP_VERSION]) + s1 + c1
        if self.state is HandshakeState.WAIT_C2:
            if len(data) < HANDSHAKE_SIZE:
                return 0, b""
            # C2 should echo S1, but digest-handshake clients send something else;
            # nothing in it matters for serving a publisher.
            self.state = HandshakeState.DONE
            return HANDSHAKE_SIZE, b""
        return 0, b""
