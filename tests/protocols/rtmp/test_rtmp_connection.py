"""The server connection driven by whole client conversations, byte for byte.

Client chunks are built by hand here (not with the package's ChunkWriter), and the
server's replies that clients wait on (`_result`, `onStatus`) are compared with
literal bytes. Command bodies use `amf0.encode_all`, whose output is pinned byte
for byte in test_rtmp_amf0.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from live.protocols.rtmp import (
    AudioConfig,
    AudioFrame,
    ConnectRequested,
    MetadataReceived,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RtmpEvent,
    RtmpServerConnection,
    VideoConfig,
    VideoEndOfSequence,
    VideoFrame,
    amf0,
)
from live.protocols.rtmp.amf0 import EcmaArray
from live.protocols.rtmp.chunk import ChunkReader, RtmpMessage


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def fixed_random(n: int) -> bytes:
    return bytes([0xA5]) * n


C1 = bytes(range(256)) * 6
HANDSHAKE = b"\x03" + C1 + bytes(1536)

AVCC = h("0164001fffe100046764001f01000468ee3c80")
HVCC = h("0101600000009000000000005df000fcfdf8f800000f03")
ASC = h("1210")
IDR = h("00000005 6588840021")
P_FRAME = h("00000003 419a22")


def chunks(
    csid: int, type_id: int, stream_id: int, payload: bytes, *, ts: int = 0, chunk_size: int = 128
) -> bytes:
    """One message as a fmt 0 chunk plus fmt 3 continuations (csid 2-63)."""
    out = bytes([csid]) + ts.to_bytes(3, "big") + len(payload).to_bytes(3, "big")
    out += bytes([type_id]) + stream_id.to_bytes(4, "little") + payload[:chunk_size]
    for start in range(chunk_size, len(payload), chunk_size):
        out += bytes([0xC0 | csid]) + payload[start : start + chunk_size]
    return out


def command(csid: int, stream_id: int, *values: Any, chunk_size: int = 128) -> bytes:
    return chunks(csid, 20, stream_id, amf0.encode_all(*values), chunk_size=chunk_size)


def server_messages(data: bytes) -> list[RtmpMessage]:
    reader = ChunkReader()
    reader.feed(data)
    out = []
    while (message := reader.next_message()) is not None:
        out.append(message)
    return out


SET_CHUNK_SIZE_4096 = h("02 000000 000004 01 00000000 00001000")
OBS_CONNECT = command(
    3,
    0,
    "connect",
    1,
    {
        "app": "live",
        "type": "nonprivate",
        "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
        "swfUrl": "rtmp://example.test/live",
        "tcUrl": "rtmp://example.test/live",
    },
    chunk_size=4096,
)
RELEASE_STREAM = command(3, 0, "releaseStream", 2, None, "KEY", chunk_size=4096)
FC_PUBLISH = command(3, 0, "FCPublish", 3, None, "KEY", chunk_size=4096)
CREATE_STREAM = command(3, 0, "createStream", 4, None, chunk_size=4096)
PUBLISH = command(4, 1, "publish", 5, None, "KEY", "live", chunk_size=4096)

CONNECT_RESULT_BODY = (
    h("02 0007")
    + b"_result"
    + h("00 3ff0000000000000")
    + h("03 0006")
    + b"fmsVer"
    + h("02 000d")
    + b"FMS/3,0,1,123"
    + h("000c")
    + b"capabilities"
    + h("00 403f000000000000")
    + h("000009")
    + h("03 0005")
    + b"level"
    + h("02 0006")
    + b"status"
    + h("0004")
    + b"code"
    + h("02 001d")
    + b"NetConnection.Connect.Success"
    + h("000b")
    + b"description"
    + h("02 0015")
    + b"Connection succeeded."
    + h("000e")
    + b"objectEncoding"
    + h("00 0000000000000000")
    + h("000009")
)
CONNECT_REPLY = (
    h("02 000000 000004 05 00000000 002625a0")  # Window Ack Size 2500000
    + h("02 000000 000005 06 00000000 002625a0 02")  # Set Peer Bandwidth, dynamic
    + h("02 000000 000004 01 00000000 00001000")  # Set Chunk Size 4096
    + h("02 000000 000006 04 00000000 0000 00000000")  # StreamBegin 0
    + h("03 000000 0000be 14 00000000")
    + CONNECT_RESULT_BODY
)
RELEASE_RESULT = (
    h("03 000000 000014 14 00000000 02 0007") + b"_result" + h("00 4000000000000000 05")
)
FCPUBLISH_RESULT = (
    h("03 000000 000014 14 00000000 02 0007") + b"_result" + h("00 4008000000000000 05")
)
CREATE_RESULT = (
    h("03 000000 00001d 14 00000000 02 0007")
    + b"_result"
    + h("00 4010000000000000 05 00 3ff0000000000000")
)
PUBLISH_START = (
    h("02 000000 000006 04 00000000 0000 00000001")  # StreamBegin 1
    + h("05 000000 000069 14 01000000")
    + h("02 0008")
    + b"onStatus"
    + h("00 0000000000000000 05 03 0005")
    + b"level"
    + h("02 0006")
    + b"status"
    + h("0004")
    + b"code"
    + h("02 0017")
    + b"NetStream.Publish.Start"
    + h("000b")
    + b"description"
    + h("02 0010")
    + b"Start publishing"
    + h("000009")
)


def new_connection(**kwargs: Any) -> RtmpServerConnection:
    return RtmpServerConnection(random_bytes=fixed_random, **kwargs)


def connected(**kwargs: Any) -> RtmpServerConnection:
    """A connection past handshake and connect, with events and output drained."""
    conn = new_connection(**kwargs)
    conn.receive_data(HANDSHAKE + SET_CHUNK_SIZE_4096 + OBS_CONNECT)
    assert [type(e) for e in conn.events()] == [ConnectRequested]
    conn.data_to_send()
    return conn


def publishing(**kwargs: Any) -> RtmpServerConnection:
    conn = connected(**kwargs)
    conn.receive_data(CREATE_STREAM + PUBLISH)
    assert [type(e) for e in conn.events()] == [PublishRequested]
    conn.accept_publish()
    conn.data_to_send()
    return conn


# -- the whole conversation -------------------------------------------------------------------


def test_obs_conversation_byte_for_byte() -> None:
    conn = new_connection()

    conn.receive_data(HANDSHAKE[:1537])
    s0s1s2 = conn.data_to_send()
    assert s0s1s2 == b"\x03" + bytes(8) + bytes([0xA5]) * 1528 + C1
    conn.receive_data(HANDSHAKE[1537:])
    assert conn.data_to_send() == b""  # nothing until the client speaks
    assert conn.events() == []

    conn.receive_data(SET_CHUNK_SIZE_4096 + OBS_CONNECT)
    assert conn.data_to_send() == CONNECT_REPLY
    assert conn.events() == [
        ConnectRequested(
            app="live",
            tc_url="rtmp://example.test/live",
            flash_ver="FMLE/3.0 (compatible; FMSc/1.0)",
            properties={
                "app": "live",
                "type": "nonprivate",
                "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
                "swfUrl": "rtmp://example.test/live",
                "tcUrl": "rtmp://example.test/live",
            },
        )
    ]

    conn.receive_data(RELEASE_STREAM + FC_PUBLISH + CREATE_STREAM)
    assert conn.data_to_send() == RELEASE_RESULT + FCPUBLISH_RESULT + CREATE_RESULT

    conn.receive_data(PUBLISH)
    assert conn.data_to_send() == b""  # the adapter decides first
    assert conn.events() == [PublishRequested(1, "KEY", "", "live")]
    conn.accept_publish()
    assert conn.data_to_send() == PUBLISH_START

    metadata = EcmaArray(width=1280.0, height=720.0, videocodecid=7.0, audiocodecid=10.0)
    media = (
        chunks(4, 18, 1, amf0.encode_all("@setDataFrame", "onMetaData", metadata), chunk_size=4096)
        + chunks(6, 9, 1, h("17 00 000000") + AVCC, chunk_size=4096)
        + chunks(4, 8, 1, h("af 00") + ASC, chunk_size=4096)
        + chunks(6, 9, 1, h("17 01 000042") + IDR, ts=0, chunk_size=4096)
        # fmt 1 video header: +33 ms, new length, type 9; then CTS -33
        + h("46 000021")
        + (5 + len(P_FRAME)).to_bytes(3, "big")
        + h("09")
        + h("27 01 ffffdf")
        + P_FRAME
        # fmt 1 audio header (+23 ms), then fmt 2 (+23 ms, same length and type)
        + h("44 000017 000006 08")
        + h("af 01 21100504")
        + h("84 000017")
        + h("af 01 21100506")
    )
    conn.receive_data(media)
    assert conn.events() == [
        MetadataReceived(
            {"width": 1280.0, "height": 720.0, "videocodecid": 7.0, "audiocodecid": 10.0}
        ),
        VideoConfig("h264", AVCC, 0),
        AudioConfig("aac", ASC, 0),
        VideoFrame("h264", 0, 66, True, IDR),
        VideoFrame("h264", 33, -33, False, P_FRAME),
        AudioFrame("aac", 23, h("21100504")),
        AudioFrame("aac", 46, h("21100506")),
    ]

    conn.receive_data(
        command(3, 0, "FCUnpublish", 6, None, "KEY", chunk_size=4096)
        + command(3, 0, "deleteStream", 7, None, 1, chunk_size=4096)
    )
    assert conn.events() == [PublishEnded(1, "FCUnpublish")]
    assert not conn.closed


def test_ffmpeg_style_conversation() -> None:
    conn = new_connection()
    connect = command(
        3,
        0,
        "connect",
        1,
        {
            "app": "live",
            "flashVer": "FMLE/3.0 (compatible; Lavf61.7.100)",
            "tcUrl": "rtmp://127.0.0.1:1935/live",
            "type": "nonprivate",
        },
    )
    assert len(connect) > 140  # spans a continuation chunk at the default chunk size
    conn.receive_data(HANDSHAKE + connect)
    assert conn.data_to_send()[3073:] == CONNECT_REPLY
    conn.receive_data(
        SET_CHUNK_SIZE_4096
        + command(3, 0, "releaseStream", 2, None, "live/KEY?token=a%20b", chunk_size=4096)
        + command(3, 0, "FCPublish", 3, None, "live/KEY?token=a%20b", chunk_size=4096)
        + command(3, 0, "createStream", 4, None, chunk_size=4096)
        + command(8, 1, "publish", 5, None, "live/K%2FEY?token=a%20b", "live", chunk_size=4096)
    )
    events = conn.events()
    assert events[1:] == [PublishRequested(1, "K/EY", "token=a%20b", "live")]
    conn.accept_publish()
    assert conn.data_to_send().endswith(PUBLISH_START)


# -- rejections ------------------------------------------------------------------------------


def test_rejected_publish() -> None:
    conn = connected()
    conn.receive_data(CREATE_STREAM + PUBLISH + chunks(6, 9, 1, h("17 00 000000") + AVCC))
    assert [type(e) for e in conn.events()] == [PublishRequested, VideoConfig]
    conn.data_to_send()
    conn.reject_publish()
    assert conn.data_to_send() == (
        h("05 000000 00006c 14 01000000 02 0008")
        + b"onStatus"
        + h("00 0000000000000000 05 03 0005")
        + b"level"
        + h("02 0005")
        + b"error"
        + h("0004")
        + b"code"
        + h("02 0019")
        + b"NetStream.Publish.BadName"
        + h("000b")
        + b"description"
        + h("02 0012")
        + b"Publishing refused"
        + h("000009")
    )
    assert conn.closed
    conn.receive_data(chunks(6, 9, 1, h("17 01 000000") + IDR))
    assert conn.events() == []
    assert conn.data_to_send() == b""


def test_reject_with_custom_code() -> None:
    conn = connected()
    conn.receive_data(CREATE_STREAM + PUBLISH)
    conn.events()
    conn.data_to_send()
    conn.reject_publish("NetStream.Publish.Denied", "Stream key disabled")
    (message,) = server_messages(conn.data_to_send())
    assert amf0.decode_all(message.payload) == [
        "onStatus",
        0.0,
        None,
        {
            "level": "error",
            "code": "NetStream.Publish.Denied",
            "description": "Stream key disabled",
        },
    ]


def test_wrong_app_is_rejected() -> None:
    conn = new_connection()
    connect = command(3, 0, "connect", 1, {"app": "other", "tcUrl": "rtmp://x/other"})
    conn.receive_data(HANDSHAKE + connect + CREATE_STREAM)
    body = (
        h("02 0006")
        + b"_error"
        + h("00 3ff0000000000000 05 03 0005")
        + b"level"
        + h("02 0005")
        + b"error"
        + h("0004")
        + b"code"
        + h("02 001e")
        + b"NetConnection.Connect.Rejected"
        + h("000b")
        + b"description"
        + h("02 0013")
        + b"Unknown application"
        + h("000009")
    )
    assert (
        conn.data_to_send()[3073:]
        == h("03 000000") + len(body).to_bytes(3, "big") + h("14 00000000") + body
    )
    events = conn.events()
    assert len(events) == 1
    assert isinstance(events[0], ProtocolError)
    # The reason is logged: it names no app, which may be a stream key (rtmp://host/KEY).
    assert "unknown app" in events[0].reason and "other" not in events[0].reason
    assert conn.closed


@pytest.mark.parametrize("app", ["live/", "live?token=1", "live/?token=1"])
def test_app_normalisation(app: str) -> None:
    conn = new_connection()
    conn.receive_data(HANDSHAKE + command(3, 0, "connect", 1, {"app": app}))
    assert conn.events() == [ConnectRequested("live", "", "", {"app": app})]


def test_configured_app() -> None:
    conn = new_connection(app="ingest")
    conn.receive_data(HANDSHAKE + command(3, 0, "connect", 1, {"app": "ingest"}))
    conn.receive_data(CREATE_STREAM + command(4, 1, "publish", 5, None, "ingest/abc"))
    assert conn.events()[1:] == [PublishRequested(1, "abc", "", "live")]


def test_bad_handshake_version() -> None:
    conn = new_connection()
    conn.receive_data(b"\x06" + C1)
    assert conn.closed
    assert conn.data_to_send() == b""
    (event,) = conn.events()
    assert isinstance(event, ProtocolError)


def test_command_before_connect() -> None:
    conn = new_connection()
    conn.receive_data(HANDSHAKE + CREATE_STREAM)
    assert [type(e) for e in conn.events()] == [ProtocolError]


def test_second_connect() -> None:
    conn = connected()
    conn.receive_data(OBS_CONNECT)
    assert [type(e) for e in conn.events()] == [ProtocolError]


# -- other commands -------------------------------------------------------------------------


def test_unknown_command_with_transaction_gets_error_but_lives() -> None:
    conn = connected()
    conn.receive_data(command(3, 0, "getStreamLength", 9, None, "KEY", chunk_size=4096))
    (message,) = server_messages(h("02 000000 000004 01 00000000 00001000") + conn.data_to_send())
    assert amf0.decode_all(message.payload) == [
        "_error",
        9.0,
        None,
        {
            "level": "error",
            "code": "NetConnection.Call.Failed",
            "description": "Unsupported command getStreamLength",
        },
    ]
    conn.receive_data(command(3, 0, "someNotification", 0, None, chunk_size=4096))
    assert conn.data_to_send() == b""
    assert conn.events() == []
    assert not conn.closed


def test_second_publish_is_refused_without_closing() -> None:
    conn = publishing()
    conn.receive_data(command(4, 1, "publish", 6, None, "OTHER", "live", chunk_size=4096))
    (message,) = server_messages(h("02 000000 000004 01 00000000 00001000") + conn.data_to_send())
    assert amf0.decode_all(message.payload)[3]["code"] == "NetStream.Publish.BadName"
    assert conn.events() == []
    assert not conn.closed


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        (command(3, 0, "deleteStream", 7, None, 1, chunk_size=4096), "deleteStream"),
        (command(4, 1, "closeStream", 0, None, chunk_size=4096), "closeStream"),
        (command(3, 0, "FCUnpublish", 0, None, "KEY", chunk_size=4096), "FCUnpublish"),
    ],
)
def test_publish_ending(ending: bytes, reason: str) -> None:
    conn = publishing()
    conn.receive_data(ending + ending)
    assert conn.events() == [PublishEnded(1, reason)]
    # media after the end is dropped
    conn.receive_data(chunks(6, 9, 1, h("17 01 000000") + IDR, chunk_size=4096))
    assert conn.events() == []


def test_delete_of_another_stream_does_not_end_the_publish() -> None:
    conn = publishing()
    conn.receive_data(command(3, 0, "deleteStream", 7, None, 2, chunk_size=4096))
    assert conn.events() == []


def test_accept_without_request_is_a_programming_error() -> None:
    conn = connected()
    with pytest.raises(RuntimeError):
        conn.accept_publish()
    with pytest.raises(RuntimeError):
        conn.reject_publish()


def test_accept_after_close_is_a_no_op() -> None:
    conn = connected()
    conn.receive_data(CREATE_STREAM + PUBLISH + b"\x02\x00\x00\x00\x00\x00\x04\x01" + bytes(8))
    assert conn.closed
    conn.data_to_send()
    conn.accept_publish()
    assert conn.data_to_send() == b""


def test_amf3_command_and_data_messages() -> None:
    conn = new_connection()
    connect = b"\x00" + amf0.encode_all("connect", 1, {"app": "live"})
    conn.receive_data(HANDSHAKE + chunks(3, 17, 0, connect))
    assert conn.events() == [ConnectRequested("live", "", "", {"app": "live"})]
    conn.receive_data(
        chunks(3, 17, 0, b"\x00" + amf0.encode_all("createStream", 2, None))
        + chunks(4, 17, 1, b"\x00" + amf0.encode_all("publish", 3, None, "K", "live"))
        + chunks(4, 15, 1, b"\x00" + amf0.encode_all("onMetaData", {"fps": 30}))
    )
    assert conn.events() == [PublishRequested(1, "K", "", "live"), MetadataReceived({"fps": 30.0})]


def test_bare_and_malformed_metadata() -> None:
    conn = publishing()
    conn.receive_data(
        chunks(4, 18, 1, amf0.encode_all("onMetaData", EcmaArray(a=1)), chunk_size=4096)
        + chunks(4, 18, 1, h("02 0003") + b"onM" + h("07 0001"), chunk_size=4096)  # bad AMF
        + chunks(4, 18, 1, amf0.encode_all("onTextData", {"text": "x"}), chunk_size=4096)
        + chunks(4, 18, 1, amf0.encode_all("@setDataFrame", "onMetaData", 5), chunk_size=4096)
    )
    assert conn.events() == [MetadataReceived({"a": 1.0})]
    assert not conn.closed


def test_media_before_publish_is_ignored() -> None:
    conn = connected()
    conn.receive_data(chunks(6, 9, 1, h("17 00 000000") + AVCC, chunk_size=4096))
    assert conn.events() == []


def test_enhanced_rtmp_connect_and_hevc() -> None:
    conn = new_connection()
    properties = {
        "app": "live",
        "tcUrl": "rtmp://x/live",
        "fourCcList": ["av01", "vp09", "hvc1"],
        "capsEx": 2,
    }
    conn.receive_data(HANDSHAKE + command(3, 0, "connect", 1, properties))
    reply = server_messages(conn.data_to_send()[3073:])[-1]
    _, _, server, info = amf0.decode_all(reply.payload)
    assert server == {
        "fmsVer": "FMS/3,0,1,123",
        "capabilities": 31.0,
        "fourCcList": ["av01", "vp09", "hvc1"],
        "capsEx": 2.0,
    }
    assert info["code"] == "NetConnection.Connect.Success"
    conn.receive_data(command(3, 0, "createStream", 2, None))
    conn.receive_data(command(4, 1, "publish", 3, None, "KEY", "live"))
    conn.accept_publish()
    conn.receive_data(
        chunks(6, 9, 1, h("90") + b"hvc1" + HVCC)
        + chunks(6, 9, 1, h("91") + b"hvc1" + h("000064") + IDR, ts=100)
        + chunks(6, 9, 1, h("a1") + b"hvc1" + h("ffffce") + P_FRAME, ts=150)
        + chunks(6, 9, 1, h("a3") + b"hvc1" + P_FRAME, ts=200)
        + chunks(6, 9, 1, h("92") + b"hvc1", ts=250)
        + chunks(4, 8, 1, h("90") + b"Opus" + b"OpusHead", ts=0)
        + chunks(4, 8, 1, h("91") + b"Opus" + h("fc"), ts=20)
    )
    assert conn.events()[2:] == [
        VideoConfig("hevc", HVCC, 0),
        VideoFrame("hevc", 100, 100, True, IDR),
        VideoFrame("hevc", 150, -50, False, P_FRAME),
        VideoFrame("hevc", 200, 0, False, P_FRAME),
        VideoEndOfSequence(250),
        AudioConfig("opus", b"OpusHead", 0),
        AudioFrame("opus", 20, h("fc")),
    ]


def test_unknown_fourcc_is_a_controlled_protocol_error() -> None:
    conn = publishing()
    conn.receive_data(chunks(6, 9, 1, h("90") + b"xxxx" + HVCC, chunk_size=4096))
    (event,) = conn.events()
    assert isinstance(event, ProtocolError)
    assert "FourCC" in event.reason
    assert conn.closed


# -- control messages -------------------------------------------------------------------------


def test_ping_gets_pong() -> None:
    conn = connected()
    conn.receive_data(h("02 000000 000006 04 00000000 0006 0000abcd"))
    assert conn.data_to_send() == h("02 000000 000006 04 00000000 0007 0000abcd")
    conn.receive_data(h("02 000000 000006 04 00000000 0003 00000001"))  # SetBufferLength
    assert conn.data_to_send() == b""


def test_acknowledgement_after_the_client_window() -> None:
    conn = connected()
    conn.receive_data(h("02 000000 000004 05 00000000 000003e8"))  # client window 1000
    first = conn.data_to_send()
    # More than 1000 bytes have arrived since the start, so the first ack is due now.
    assert first == h("02 000000 000004 03 00000000") + conn.bytes_received.to_bytes(4, "big")
    base = conn.bytes_received
    video = chunks(6, 9, 1, bytes(1500), chunk_size=4096)
    conn.receive_data(video[:999])
    assert conn.data_to_send() == b""
    conn.receive_data(video[999:1000])
    assert conn.bytes_received == base + 1000
    assert conn.data_to_send() == h("02 000000 000004 03 00000000") + (base + 1000).to_bytes(
        4, "big"
    )
    conn.receive_data(video[1000:])
    assert conn.data_to_send() == b""


def test_acknowledgement_defaults_to_our_window() -> None:
    conn = connected(window_ack_size=5000)
    assert conn.bytes_received < 5000
    conn.receive_data(chunks(6, 9, 1, bytes(5000 - conn.bytes_received - 12), chunk_size=4096))
    assert conn.bytes_received == 5000
    assert conn.data_to_send() == h("02 000000 000004 03 00000000 00001388")


# -- timestamps and aggregates ---------------------------------------------------------------


def test_timestamp_wrap_at_2_32() -> None:
    conn = publishing()
    frame = h("27 01 000000") + P_FRAME
    conn.receive_data(
        h("06 ffffff")
        + len(frame).to_bytes(3, "big")
        + h("09 01000000 fffffff0")
        + frame
        + h("86 000020")
        + frame  # +32 ms: the 32-bit timestamp wraps to 0x10
        + h("86 000020")
        + frame
        + h("04 000005 000004 08 01000000 af01 0102")  # audio keeps its own timeline
    )
    assert [(type(e).__name__, e.timestamp) for e in conn.events()] == [
        ("VideoFrame", 0xFFFFFFF0),
        ("VideoFrame", (1 << 32) + 0x10),
        ("VideoFrame", (1 << 32) + 0x30),
        ("AudioFrame", 5),
    ]


def test_aggregate_message_is_split_and_rebased() -> None:
    conn = publishing()
    video = h("17 01 000000") + IDR
    audio = h("af 01 2110")

    def tag(type_id: int, ts: int, body: bytes) -> bytes:
        header = bytes([type_id]) + len(body).to_bytes(3, "big")
        header += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + bytes(3)
        return header + body + (11 + len(body)).to_bytes(4, "big")

    payload = tag(9, 5000, video) + tag(8, 5020, audio) + tag(18, 5020, amf0.encode_all("x"))
    conn.receive_data(chunks(7, 22, 1, payload, ts=1000, chunk_size=4096))
    assert conn.events() == [
        VideoFrame("h264", 1000, 0, True, IDR),
        AudioFrame("aac", 1020, h("2110")),
    ]


def test_truncated_aggregate_is_a_protocol_error() -> None:
    conn = publishing()
    conn.receive_data(chunks(7, 22, 1, h("09 000010 000000 00 000000 00"), chunk_size=4096))
    assert [type(e) for e in conn.events()] == [ProtocolError]


# -- safety ---------------------------------------------------------------------------------


def test_oversized_message_is_refused_before_buffering() -> None:
    conn = connected(max_message_size=10_000)
    conn.receive_data(h("06 000000 002711 09 01000000"))  # declares 10001 bytes
    (event,) = conn.events()
    assert isinstance(event, ProtocolError)
    assert "exceeds" in event.reason


def test_too_many_chunk_streams() -> None:
    conn = connected()
    data = b"".join(
        b"\x00" + bytes([csid]) + h("000000 000001 03 00000000 00") for csid in range(70)
    )
    conn.receive_data(data)
    (event,) = conn.events()
    assert isinstance(event, ProtocolError)


def test_incomplete_trailing_chunk_is_kept() -> None:
    conn = publishing()
    data = chunks(6, 9, 1, h("17 01 000000") + IDR, chunk_size=4096)
    conn.receive_data(data[:-1])
    assert conn.events() == []
    assert conn.buffered_bytes == len(data) - 1
    conn.receive_data(data[-1:])
    assert [type(e) for e in conn.events()] == [VideoFrame]
    assert conn.buffered_bytes == 0


def drive(pieces: list[bytes]) -> list[RtmpEvent]:
    """Feed pieces, answering PublishRequested with accept as an adapter would."""
    conn = new_connection()
    events: list[RtmpEvent] = []
    for piece in pieces:
        conn.receive_data(piece)
        new = conn.events()
        if any(isinstance(e, PublishRequested) for e in new):
            conn.accept_publish()
        events += new
    return events


def test_split_at_every_byte_gives_the_same_events() -> None:
    long_p_frame = h("00000010") + bytes(range(16))
    late_frame = h("27 01 ffffdf") + long_p_frame  # 25 bytes: two chunks of at most 16
    conversation = (
        HANDSHAKE
        + SET_CHUNK_SIZE_4096
        + OBS_CONNECT
        + RELEASE_STREAM
        + FC_PUBLISH
        + CREATE_STREAM
        + PUBLISH
        + h("02 000000 000004 01 00000000 00000010")  # chunk size 16 from here on
        + chunks(6, 9, 1, h("17 00 000000") + AVCC, chunk_size=16)
        + chunks(4, 8, 1, h("af 00") + ASC, chunk_size=16)
        + chunks(6, 9, 1, h("17 01 000042") + IDR, ts=0xFFFFFF - 1, chunk_size=16)
        + h("06 ffffff 000019 09 01000000 01000000")
        + late_frame[:16]
        + h("04 000001 000004 08 01000000 af01 2110")  # interleaved audio
        + h("c6 01000000")
        + late_frame[16:]
        + command(3, 0, "FCUnpublish", 6, None, "KEY", chunk_size=16)
    )
    whole = drive([conversation])
    assert [type(e) for e in whole] == [
        ConnectRequested,
        PublishRequested,
        VideoConfig,
        AudioConfig,
        VideoFrame,
        AudioFrame,
        VideoFrame,
        PublishEnded,
    ]
    assert whole[6] == VideoFrame("h264", 0x01000000, -33, False, long_p_frame)
    bytewise = drive([conversation[i : i + 1] for i in range(len(conversation))])
    assert bytewise == whole
