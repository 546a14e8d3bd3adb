"""Packet headers, loss lists, handshake bodies and Stream IDs, byte for byte."""

from __future__ import annotations

import pytest

from live.protocols.srt import handshake as hs
from live.protocols.srt import packets as pk
from live.protocols.srt.seqno import SEQ_MASK, seq_add, seq_diff
from live.protocols.srt.streamid import parse_stream_id


def test_sequence_arithmetic_wraps_at_31_bits():
    assert seq_add(SEQ_MASK, 1) == 0
    assert seq_add(0, -1) == SEQ_MASK
    assert seq_diff(SEQ_MASK - 2, 3) == 6
    assert seq_diff(3, SEQ_MASK - 2) == -6
    assert seq_diff(5, 5) == 0


def test_data_packet_header_bytes():
    packet = pk.data_packet(0x12345678, 0xAABBCCDD, 0x01020304, b"ts", msgno=5, key=2,
                            retransmitted=True)  # fmt: skip
    assert packet == bytes.fromhex("12345678D4000005AABBCCDD01020304") + b"ts"


def test_control_packet_header_bytes():
    packet = pk.control_packet(pk.ACKACK, 0, 7, 1_000_000, 0x55, b"\0\0\0\0")
    assert packet == bytes.fromhex("8006000000000007000F42400000005500000000")
    ext = pk.control_packet(pk.USER_DEFINED, pk.EXT_KMRSP, 0, 0, 1)
    assert ext[:4] == bytes.fromhex("FFFF0004")


def test_full_ack_layout():
    ack = pk.full_ack(
        3, 10, 0x99, ack_seq=1234, rtt_us=100_000, rtt_var_us=50_000,
        buffer_free=8000, packet_rate=900, capacity=900, byte_rate=1_200_000,
    )  # fmt: skip
    assert ack[:16] == bytes.fromhex("80020000000000030000000A00000099")
    assert ack[16:] == bytes.fromhex("000004D2000186A00000C35000001F40000003840000038400124F80")


def test_loss_list_ranges_and_singles():
    body = pk.encode_loss_list([(5, 5), (10, 12), (SEQ_MASK, 1)])
    assert body == bytes.fromhex("000000058000000A0000000CFFFFFFFF00000001")
    assert pk.decode_loss_list(body) == [(5, 5), (10, 12), (SEQ_MASK, 1)]
    with pytest.raises(pk.PacketError):
        pk.decode_loss_list(bytes.fromhex("8000000A"))
    assert pk.compress_ranges([1, 2, 3, 7, SEQ_MASK, 0]) == [(1, 3), (7, 7), (SEQ_MASK, 0)]


def test_stream_id_words_are_little_endian_on_the_wire():
    # libsrt copies the string into host-order words, then sends them in network order
    assert hs.encode_stream_id("abcdefg") == b"dcba\x00gfe"
    assert hs.decode_stream_id(b"dcba\x00gfe") == "abcdefg"
    text = "#!::r=live/sk_1,m=publish"
    assert hs.decode_stream_id(hs.encode_stream_id(text)) == text
    with pytest.raises(pk.PacketError):
        hs.decode_stream_id(b"abc")
    with pytest.raises(pk.PacketError):
        hs.decode_stream_id(b"\xff\xfe\xfd\xfc")


def test_handshake_roundtrip_with_extensions():
    hsreq = hs.SrtOptions(0x010503, 0xBF, 120, 80).encode()
    request = hs.Handshake(5, 2, 0x7, 99, 1500, 8192, hs.CONCLUSION, 0x42, 0xDEADBEEF,
                           hs.ip_field("127.0.0.1"), [(hs.EXT_HSREQ, hsreq)])  # fmt: skip
    body = request.encode()
    assert body[:8] == bytes.fromhex("0000000500020007")
    assert body[32:36] == bytes([1, 0, 0, 127])  # IPv4 in the first word, host order
    assert body[48:52] == bytes.fromhex("00010003")
    assert body[60:64] == bytes.fromhex("00780050")  # RCV 120 ms | SND 80 ms
    parsed = hs.parse_handshake(body)
    assert parsed == request
    options = hs.parse_srt_options(parsed.extension_block(hs.EXT_HSREQ))
    assert (options.recv_latency_ms, options.send_latency_ms) == (120, 80)


def test_handshake_parser_rejects_short_and_overlong_blocks():
    with pytest.raises(pk.PacketError):
        hs.parse_handshake(bytes(47))
    body = hs.Handshake(5, 0, 1, 0, 1500, 8192, hs.CONCLUSION, 1, 1).encode()
    with pytest.raises(pk.PacketError):
        hs.parse_handshake(body + bytes.fromhex("00010009") + bytes(8))


@pytest.mark.parametrize(
    ("stream_id", "key", "mode", "user"),
    [
        ("sk_abc", "sk_abc", "publish", ""),
        ("#!::r=live/sk_abc,m=publish", "sk_abc", "publish", ""),
        ("#!::u=alice,r=live/sk_abc,m=publish", "sk_abc", "publish", "alice"),
        ("#!::r=sk_abc,m=publish", "sk_abc", "publish", ""),
        ("#!::r=live/sk_abc", "sk_abc", "request", ""),
        ("#!::r=live/sk_abc,m=request", "sk_abc", "request", ""),
        ("publish:live/sk_abc", "sk_abc", "publish", ""),
        ("publish:sk_abc", "sk_abc", "publish", ""),
        ("read:live/sk_abc", "sk_abc", "read", ""),
        ("live/sk_abc", "sk_abc", "publish", ""),
        ("", "", "publish", ""),
        ("%23%21%3A%3Ar%3Dlive%2Fsk_abc%2Cm%3Dpublish", "sk_abc", "publish", ""),
    ],
)
def test_stream_id_forms(stream_id, key, mode, user):
    request = parse_stream_id(stream_id)
    assert (request.key, request.mode, request.user) == (key, mode, user)
