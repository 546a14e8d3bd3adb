"""Property tests: hostile or damaged input gives events or one ProtocolError, never
an exception, and the connection never holds more than its limits allow."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.protocols.rtmp import (
    ProtocolError,
    PublishRequested,
    RtmpEvent,
    RtmpServerConnection,
    VideoFrame,
    amf0,
)
from live.protocols.rtmp.amf0 import EcmaArray
from live.protocols.rtmp.chunk import ChunkReader, ChunkWriter
from live.protocols.rtmp.errors import AmfError, ChunkError, FlvError
from live.protocols.rtmp.flv import parse_audio_tag, parse_video_tag

MAX_MESSAGE = 4096
# One incomplete chunk (header + at most one message) plus two messages in reassembly,
# plus a handshake still waiting for its next 1536 bytes.
BUFFER_BOUND = 3 * MAX_MESSAGE + 18 + 1537

HANDSHAKE = b"\x03" + bytes(range(256)) * 6 + bytes(1536)


def _conversation() -> bytes:
    """A plausible OBS-like publish, written with the package's own writer."""
    w = ChunkWriter(128)
    out = bytearray(HANDSHAKE)

    def cmd(csid: int, sid: int, *values: Any) -> None:
        out.extend(w.write(csid, 20, sid, 0, amf0.encode_all(*values)))

    out += w.write(2, 1, 0, 0, (256).to_bytes(4, "big"))
    w.chunk_size = 256
    cmd(3, 0, "connect", 1, {"app": "live", "tcUrl": "rtmp://h/live", "flashVer": "FMLE/3.0"})
    cmd(3, 0, "releaseStream", 2, None, "key")
    cmd(3, 0, "FCPublish", 3, None, "key")
    cmd(3, 0, "createStream", 4, None)
    cmd(4, 1, "publish", 5, None, "key?t=1", "live")
    meta = amf0.encode_all("@setDataFrame", "onMetaData", EcmaArray(width=640.0, fps=30.0))
    out += w.write(4, 18, 1, 0, meta)
    out += w.write(6, 9, 1, 0, bytes.fromhex("1700000000 0164001fffe100046764001f01000468ee3c80"))
    out += w.write(4, 8, 1, 0, bytes.fromhex("af00 1210"))
    out += w.write(2, 4, 0, 0, bytes.fromhex("0006 00000001"))
    for i in range(6):
        frame = bytes.fromhex("17" if i == 0 else "27") + bytes.fromhex("01 000021")
        out += w.write(6, 9, 1, 0xFFFFFF - 40 + 33 * i, frame + bytes([i]) * (90 + 40 * i))
        out += w.write(4, 8, 1, 23 * i, bytes.fromhex("af01") + bytes([i]) * 20)
    out += w.write(6, 9, 1, 300, bytes.fromhex("90") + b"hvc1" + bytes(30))
    out += w.write(6, 9, 1, 333, bytes.fromhex("91") + b"hvc1" + bytes.fromhex("fffff0") + bytes(9))
    cmd(3, 0, "FCUnpublish", 6, None, "key")
    cmd(3, 0, "deleteStream", 7, None, 1)
    return bytes(out)


CONVERSATION = _conversation()


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def _run(pieces: list[bytes]) -> list[RtmpEvent]:
    """Drive a connection like an adapter would, checking invariants on the way."""
    conn = RtmpServerConnection(max_message_size=MAX_MESSAGE, random_bytes=bytes)
    events: list[RtmpEvent] = []
    for piece in pieces:
        conn.receive_data(piece)
        new = conn.events()
        events += new
        if any(isinstance(e, PublishRequested) for e in new):
            conn.accept_publish()
        conn.data_to_send()
        if not conn.closed:
            assert conn.buffered_bytes <= BUFFER_BOUND
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) <= 1
    if errors:
        assert events[-1] is errors[0]
        assert conn.closed
        assert not errors[0].reason.startswith("internal error"), errors[0].reason
    return events


def test_reference_conversation_is_valid() -> None:
    events = _run([CONVERSATION])
    assert not any(isinstance(e, ProtocolError) for e in events)
    frames = [e for e in events if isinstance(e, VideoFrame)]
    assert len(frames) == 7
    assert frames[-1].composition_time == -16


_cuts = st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40)


@settings(max_examples=150, deadline=None)
@given(_cuts)
def test_valid_conversation_gives_the_same_events_however_it_is_split(cuts: list[int]) -> None:
    assert _run(_pieces(CONVERSATION, cuts)) == _run([CONVERSATION])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), _cuts)
def test_arbitrary_bytes_after_the_handshake(data: bytes, cuts: list[int]) -> None:
    _run([HANDSHAKE, *_pieces(data, cuts)])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=4000), _cuts)
def test_arbitrary_bytes_from_the_start(data: bytes, cuts: list[int]) -> None:
    _run(_pieces(b"\x03" + data, cuts))


_mutation = st.tuples(
    st.sampled_from(["set", "insert", "delete"]),
    st.integers(min_value=len(HANDSHAKE), max_value=len(CONVERSATION) - 1),
    st.integers(min_value=0, max_value=255),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutation, min_size=1, max_size=6), _cuts)
def test_mutated_conversation(mutations: list[tuple[str, int, int]], cuts: list[int]) -> None:
    data = bytearray(CONVERSATION)
    for kind, position, value in mutations:
        position = min(position, len(data) - 1)
        if kind == "set":
            data[position] = value
        elif kind == "insert":
            data.insert(position, value)
        else:
            del data[position]
    _run(_pieces(bytes(data), cuts))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_chunk_reader_only_raises_chunk_errors(data: bytes) -> None:
    reader = ChunkReader(max_message_size=MAX_MESSAGE)
    reader.feed(data)
    try:
        while reader.next_message() is not None:
            pass
    except ChunkError:
        return
    assert reader.buffered <= 3 * MAX_MESSAGE + 18


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parsers_only_raise_their_own_errors(data: bytes) -> None:
    for parse in (parse_video_tag, parse_audio_tag):
        with contextlib.suppress(FlvError):
            parse(data)
    with contextlib.suppress(AmfError):
        amf0.decode_all(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"\x80", b"\x90", b"\x91", b"\x96", b"\x97", b"\x9f"]),
    st.sampled_from([b"hvc1", b"avc1", b"av01", b"vp09", b"vp08", b"abcd", b""]),
    st.binary(max_size=40),
)
def test_enhanced_video_headers(first: bytes, fourcc: bytes, rest: bytes) -> None:
    with contextlib.suppress(FlvError):
        parse_video_tag(first + fourcc + rest)
