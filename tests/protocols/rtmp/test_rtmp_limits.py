"""The configured RTMP limits (message size, chunk size), byte for byte: input at a
limit passes, one byte over is refused with an error onStatus naming the limit,
then a ProtocolError that says which limit it was."""

from __future__ import annotations

import pytest
from test_rtmp_connection import (
    AVCC,
    IDR,
    chunks,
    connected,
    h,
    publishing,
)

from live.protocols.rtmp import ProtocolError, VideoConfig, VideoFrame
from live.protocols.rtmp.chunk import ChunkReader
from live.protocols.rtmp.errors import LimitExceeded


def amf_string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def error_status(csid: int, stream_id: int, code: str, description: str) -> bytes:
    """An onStatus error command as the server must write it (one chunk: the server's
    chunk size is 4096 once connected)."""
    body = (
        h("02") + amf_string("onStatus")
        + h("00 0000000000000000 05 03")
        + amf_string("level") + h("02") + amf_string("error")
        + amf_string("code") + h("02") + amf_string(code)
        + amf_string("description") + h("02") + amf_string(description)
        + h("000009")
    )  # fmt: skip
    header = bytes([csid]) + h("000000") + len(body).to_bytes(3, "big") + h("14")
    return header + stream_id.to_bytes(4, "little") + body


def set_chunk_size(size: int) -> bytes:
    return h("02 000000 000004 01 00000000") + size.to_bytes(4, "big")


# -- the chunk reader ---------------------------------------------------------------------


def test_chunk_size_at_the_limit_is_taken_one_over_is_refused() -> None:
    reader = ChunkReader(max_chunk_size=65536)
    reader.feed(set_chunk_size(65536))
    assert reader.next_message() is None
    assert reader.chunk_size == 65536
    reader.feed(set_chunk_size(65537))
    with pytest.raises(LimitExceeded, match="chunk size 65537 exceeds the 65536") as caught:
        reader.next_message()
    assert caught.value.limit == "chunk_size"
    assert reader.chunk_size == 65536


def test_message_size_over_the_limit_is_refused_from_its_header() -> None:
    reader = ChunkReader(max_message_size=1000)
    reader.feed(h("06 000000 0003e8 09 01000000") + bytes(128))  # 1000: fine so far
    assert reader.next_message() is None
    reader = ChunkReader(max_message_size=1000)
    reader.feed(h("06 000000 0003e9 09 01000000"))  # 1001, nothing of the body yet
    with pytest.raises(LimitExceeded) as caught:
        reader.next_message()
    assert caught.value.limit == "message_size"


# -- the connection -----------------------------------------------------------------------


def video_message(body_size: int) -> bytes:
    """An AVC NAL unit frame whose RTMP message is exactly `body_size` bytes, in
    4096-byte chunks (the chunk size the test client set)."""
    nal = IDR[4:] + bytes(body_size - 5 - len(IDR))
    payload = h("17 01 000000") + len(nal).to_bytes(4, "big") + nal
    assert len(payload) == body_size
    return chunks(6, 9, 1, payload, chunk_size=4096)


def test_a_frame_at_the_message_limit_passes() -> None:
    conn = publishing(max_message_size=10_000)
    conn.receive_data(chunks(6, 9, 1, h("17 00 000000") + AVCC, chunk_size=4096))
    conn.receive_data(video_message(10_000))
    events = conn.events()
    assert [type(e) for e in events] == [VideoConfig, VideoFrame]
    assert len(events[1].data) == 10_000 - 5
    assert not conn.closed


def test_a_frame_over_the_message_limit_is_refused_with_publish_rejected() -> None:
    conn = publishing(max_message_size=10_000)
    conn.receive_data(video_message(10_001))
    (event,) = conn.events()
    reason = "message of 10001 bytes exceeds the 10000 byte limit"
    assert event == ProtocolError(reason, limit="message_size")
    assert conn.data_to_send() == error_status(
        5, 1, "NetStream.Publish.Rejected", "Refused: " + reason
    )
    assert conn.closed
    conn.receive_data(video_message(100))  # nothing more after the refusal
    assert conn.events() == [] and conn.data_to_send() == b""


def test_a_chunk_size_over_the_limit_before_publish_is_refused_on_the_connection() -> None:
    conn = connected(max_chunk_size=65536)
    conn.receive_data(set_chunk_size(1 << 20))
    (event,) = conn.events()
    reason = "chunk size 1048576 exceeds the 65536 byte limit"
    assert event == ProtocolError(reason, limit="chunk_size")
    assert conn.data_to_send() == error_status(
        3, 0, "NetConnection.Connect.Rejected", "Refused: " + reason
    )


def test_malformed_input_is_no_limit() -> None:
    conn = connected(max_chunk_size=65536)
    conn.receive_data(set_chunk_size(0))
    (event,) = conn.events()
    assert isinstance(event, ProtocolError) and event.limit is None
    assert conn.data_to_send() == b""  # a broken client gets no explanation
