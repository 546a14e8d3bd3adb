"""RTMP chunk streams (RTMP 1.0 §5.3-5.4): reassembling messages, and writing them.

The reader keeps one small state record per chunk stream id (csid), because chunk
headers of format 1-3 leave out whatever the previous header of the same csid said.
It only consumes a chunk once all of its bytes have arrived, so a split anywhere in
the input never changes the result, and it applies the two messages that change the
framing itself (Set Chunk Size and Abort) the moment they complete, before the next
chunk is parsed.

Safety limits keep memory proportional to legitimate use: a declared message length
over `max_message_size` or a chunk size over `max_chunk_size` (both settings) raise
`LimitExceeded`; a chunk size of 0, more than `max_chunk_streams` distinct csids, or
more than two maximum messages being reassembled at once raise `ChunkError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import ChunkError, LimitExceeded

DEFAULT_CHUNK_SIZE: Final = 128
MAX_CHUNK_SIZE: Final = 0x7FFFFFFF
EXTENDED_TIMESTAMP: Final = 0xFFFFFF
TIMESTAMP_MASK: Final = 0xFFFFFFFF

# Protocol control messages that the chunk layer itself consumes.
MSG_SET_CHUNK_SIZE: Final = 1
MSG_ABORT: Final = 2

_HEADER_SIZES: Final = (11, 7, 3, 0)
_NEED_MORE: Final = object()


@dataclass(frozen=True, slots=True)
class RtmpMessage:
    """One reassembled message. `timestamp` is the raw 32-bit RTMP timestamp."""

    csid: int
    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


@dataclass(slots=True)
class _ChunkStream:
    """What the last header on one csid said, plus the message being reassembled."""

    timestamp: int = 0  # absolute 32-bit timestamp of the current/last message
    delta: int = 0  # the last timestamp field (absolute for fmt 0), reused by fmt 3
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False  # the last fmt 0-2 header carried 0xFFFFFF
    extended_value: int = 0  # the value of that header's extended timestamp
    partial: bytearray | None = None  # payload so far of an incomplete message


class ChunkReader:
    """Turns the post-handshake byte stream into `RtmpMessage`s, one at a time."""

    def __init__(
        self,
        *,
        max_message_size: int = 16 * 1024 * 1024,
        max_chunk_size: int = MAX_CHUNK_SIZE,
        max_chunk_streams: int = 64,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_chunk_size = max_chunk_size
        self.max_chunk_streams = max_chunk_streams
        self._buf = bytearray()
        self._pos = 0
        self._streams: dict[int, _ChunkStream] = {}

    @property
    def buffered(self) -> int:
        """Bytes held: unparsed input plus partially reassembled messages."""
        held = len(self._buf) - self._pos
        for stream in self._streams.values():
            if stream.partial is not None:
                held += len(stream.partial)
        return held

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def bytes_wanted(self) -> int:
        """A lower bound on the bytes that must still arrive before another message
        can complete: what the nearest unfinished message lacks, plus the 1-byte
        headers of its remaining chunks, minus the input already held. 1 when no
        message is unfinished (the next one may be short).

        Reading less often than this costs nothing, since a partial message is of
        no use; the bound errs low (chunks of other streams may come in between).
        """
        wanted = 0
        for stream in self._streams.values():
            if stream.partial is not None:
                missing = stream.length - len(stream.partial)
                missing += -(-missing // self.chunk_size)  # continuation headers
                wanted = missing if not wanted else min(wanted, missing)
        return max(1, wanted - (len(self._buf) - self._pos))

    def next_message(self) -> RtmpMessage | None:
        """Return the next complete message, or None until more data is fed.

        Messages are returned lazily so that the caller can act on each one (and
        stop at the first fatal one) before later chunks are even parsed.
        """
        while True:
            result = self._read_chunk()
            if result is _NEED_MORE:
                if self._pos:
                    del self._buf[: self._pos]
                    self._pos = 0
                return None
            if result is None:
                continue
            assert isinstance(result, RtmpMessage)
            if result.type_id == MSG_SET_CHUNK_SIZE:
                self._apply_chunk_size(result.payload)
            elif result.type_id == MSG_ABORT:
                self._apply_abort(result.payload)
            else:
                return result

    def _apply_chunk_size(self, payload: bytes) -> None:
        if len(payload) < 4:
            raise ChunkError("Set Chunk Size message shorter than 4 bytes")
        size = int.from_bytes(payload[:4], "big")
        if size == 0 or size > MAX_CHUNK_SIZE:
            raise ChunkError(f"invalid chunk size {size}")
        if size > self.max_chunk_size:
            raise LimitExceeded(
                "chunk_size", f"chunk size {size} exceeds the {self.max_chunk_size} byte limit"
            )
        self.chunk_size = size

    def _apply_abort(self, payload: bytes) -> None:
        if len(payload) < 4:
            raise ChunkError("Abort message shorter than 4 bytes")
        stream = self._streams.get(int.from_bytes(payload[:4], "big"))
        if stream is not None:
            stream.partial = None

    def _in_progress(self) -> int:
        return sum(s.length for s in self._streams.values() if s.partial is not None)

    def _read_chunk(self) -> object:
        """Parse one chunk if it is complete: a message, None (chunk used), or _NEED_MORE.

        Nothing is committed to the per-csid state until the whole chunk is present.
        """
        buf = self._buf
        p = self._pos
        avail = len(buf) - p
        if avail < 1:
            return _NEED_MORE
        fmt = buf[p] >> 6
        csid = buf[p] & 0x3F
        p += 1
        if csid == 0:
            if avail < 2:
                return _NEED_MORE
            csid = buf[p] + 64
            p += 1
        elif csid == 1:
            if avail < 3:
                return _NEED_MORE
            csid = buf[p] + buf[p + 1] * 256 + 64
            p += 2
        header_size = _HEADER_SIZES[fmt]
        end = len(buf)
        if end - p < header_size:
            return _NEED_MORE

        stream = self._streams.get(csid)
        if stream is None:
            if fmt >= 2:
                raise ChunkError(f"chunk format {fmt} on csid {csid} with no previous header")
            if len(self._streams) >= self.max_chunk_streams:
                raise ChunkError(f"more than {self.max_chunk_streams} chunk streams")
            new_stream = True
            stream = _ChunkStream()
        else:
            new_stream = False
        continuing = stream.partial is not None

        ts_field = 0
        length = stream.length
        type_id = stream.type_id
        stream_id = stream.stream_id
        if fmt <= 2:
            if continuing:
                raise ChunkError(f"new message header on csid {csid} inside an unfinished message")
            ts_field = int.from_bytes(buf[p : p + 3], "big")
            if fmt <= 1:
                length = int.from_bytes(buf[p + 3 : p + 6], "big")
                type_id = buf[p + 6]
                if fmt == 0:
                    stream_id = int.from_bytes(buf[p + 7 : p + 11], "little")
            p += header_size
            extended = ts_field == EXTENDED_TIMESTAMP
        else:
            extended = stream.extended

        ext_value = stream.extended_value
        if extended:
            if end - p < 4:
                return _NEED_MORE
            field = int.from_bytes(buf[p : p + 4], "big")
            if not continuing:
                ext_value = field
                p += 4
            elif field == stream.extended_value:
                # Continuation chunks should repeat the extended timestamp, and most
                # clients do; those that don't are recognised by a mismatch.
                p += 4

        if not continuing:
            if length > self.max_message_size:
                raise LimitExceeded(
                    "message_size",
                    f"message of {length} bytes exceeds the {self.max_message_size} byte limit",
                )
            if fmt == 0:
                delta = ext_value if extended else ts_field
                timestamp = delta
            elif fmt <= 2:
                delta = ext_value if extended else ts_field
                timestamp = (stream.timestamp + delta) & TIMESTAMP_MASK
            else:
                delta = ext_value if extended else stream.delta
                timestamp = (stream.timestamp + delta) & TIMESTAMP_MASK
            received = 0
        else:
            delta = stream.delta
            timestamp = stream.timestamp
            assert stream.partial is not None
            received = len(stream.partial)

        take = min(self.chunk_size, length - received)
        if end - p < take:
            return _NEED_MORE
        if (
            not continuing
            and take < length
            and self._in_progress() + length > (2 * self.max_message_size)
        ):
            raise ChunkError("too much data in partially received messages")

        # The chunk is complete: commit.
        if new_stream:
            self._streams[csid] = stream
        if not continuing:
            stream.timestamp = timestamp
            stream.delta = delta
            stream.length = length
            stream.type_id = type_id
            stream.stream_id = stream_id
            stream.extended = extended
            stream.extended_value = ext_value
            stream.partial = bytearray()
        assert stream.partial is not None
        stream.partial += buf[p : p + take]
        self._pos = p + take
        if len(stream.partial) < length:
            return None
        payload = bytes(stream.partial)
        stream.partial = None
        return RtmpMessage(csid, type_id, stream_id, timestamp, payload)


def encode_basic_header(fmt: int, csid: int) -> bytes:
    """The 1-3 byte basic header for `fmt` (0-3) and `csid` (2-65599)."""
    if not 2 <= csid <= 65599:
        raise ValueError(f"csid {csid} out of range")
    if csid <= 63:
        return bytes([(fmt << 6) | csid])
    if csid <= 319:
        return bytes([fmt << 6, csid - 64])
    rest = csid - 64
    return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])


class ChunkWriter:
    """Splits outgoing messages into chunks: a fmt 0 header, then fmt 3 continuations.

    The server sends few messages, so header compression is not worth its state.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size

    def write(
        self, csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes
    ) -> bytes:
        timestamp &= TIMESTAMP_MASK
        extended = timestamp >= EXTENDED_TIMESTAMP
        ext = timestamp.to_bytes(4, "big") if extended else b""
        out = bytearray(encode_basic_header(0, csid))
        out += (EXTENDED_TIMESTAMP if extended else timestamp).to_bytes(3, "big")
        out += len(payload).to_bytes(3, "big")
        out.append(type_id)
        out += stream_id.to_bytes(4, "little")
        out += ext
        continuation = encode_basic_header(3, csid) + ext
        for start in range(0, len(payload), self.chunk_size):
            if start:
                out += continuation
            out += payload[start : start + self.chunk_size]
        return bytes(out)
