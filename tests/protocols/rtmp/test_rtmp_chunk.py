"""Chunk stream reassembly and writing, checked against hand-written bytes."""

from __future__ import annotations

import pytest

from live.protocols.rtmp.chunk import (
    ChunkReader,
    ChunkWriter,
    RtmpMessage,
    encode_basic_header,
)
from live.protocols.rtmp.errors import ChunkError


def read_all(data: bytes, reader: ChunkReader | None = None) -> list[RtmpMessage]:
    reader = reader or ChunkReader()
    reader.feed(data)
    messages = []
    while (message := reader.next_message()) is not None:
        messages.append(message)
    return messages


def read_bytewise(data: bytes) -> list[RtmpMessage]:
    reader = ChunkReader()
    messages = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        while (message := reader.next_message()) is not None:
            messages.append(message)
    return messages


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- header formats ---------------------------------------------------------------


def test_fmt0_single_chunk() -> None:
    data = h("03 000064 000005 14 01000000") + b"hello"
    assert read_all(data) == [RtmpMessage(3, 20, 1, 100, b"hello")]


def test_fmt0_stream_id_is_little_endian() -> None:
    data = h("03 000000 000001 14 02010000") + b"x"
    assert read_all(data)[0].stream_id == 0x0102


def test_fmt0_message_spanning_chunks_of_128() -> None:
    payload = bytes(range(200))
    data = h("06 000000 0000c8 09 01000000") + payload[:128] + h("c6") + payload[128:]
    assert read_all(data) == [RtmpMessage(6, 9, 1, 0, payload)]


def test_fmt1_and_fmt2_use_deltas_and_inherit_fields() -> None:
    data = (
        h("04 0003e8 000002 08 01000000")
        + b"a1"
        + h("44 000014 000003 08")  # fmt 1: delta 20, new length, same stream id
        + b"b22"
        + h("84 00000a")  # fmt 2: delta 10, same length and type
        + b"c33"
    )
    assert read_all(data) == [
        RtmpMessage(4, 8, 1, 1000, b"a1"),
        RtmpMessage(4, 8, 1, 1020, b"b22"),
        RtmpMessage(4, 8, 1, 1030, b"c33"),
    ]


def test_fmt3_starting_a_new_message_reuses_the_previous_delta() -> None:
    data = (
        h("04 0003e8 000002 08 01000000")
        + b"a1"
        + h("84 000014")
        + b"b2"
        + h("c4")  # fmt 3, new message: delta 20 again
        + b"c3"
        + h("c4")
        + b"d4"
    )
    assert [m.timestamp for m in read_all(data)] == [1000, 1020, 1040, 1060]


def test_fmt3_after_fmt0_uses_the_fmt0_field_as_delta() -> None:
    # What librtmp and FFmpeg do: the last timestamp field is the delta.
    data = h("04 000028 000001 08 01000000") + b"a" + h("c4") + b"b"
    assert [m.timestamp for m in read_all(data)] == [40, 80]


def test_fmt1_on_a_fresh_csid_is_tolerated() -> None:
    data = h("45 000010 000001 09") + b"v"
    assert read_all(data) == [RtmpMessage(5, 9, 0, 16, b"v")]


@pytest.mark.parametrize("first", ["85 000010", "c5"])
def test_fmt2_or_fmt3_on_a_fresh_csid_is_an_error(first: str) -> None:
    with pytest.raises(ChunkError):
        read_all(h(first) + b"v")


def test_zero_length_message() -> None:
    data = h("04 000005 000000 08 01000000") + h("04 000006 000001 08 01000000") + b"z"
    assert read_all(data) == [RtmpMessage(4, 8, 1, 5, b""), RtmpMessage(4, 8, 1, 6, b"z")]


# -- chunk stream ids ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("basic", "csid"),
    [
        ("02", 2),
        ("3f", 63),
        ("00 00", 64),
        ("00 ff", 319),
        ("01 00 01", 320),
        ("01 ff ff", 65599),
        ("01 3c 02", 64 + 0x3C + 2 * 256),
    ],
)
def test_basic_header_csid_encodings(basic: str, csid: int) -> None:
    data = h(basic) + h("000007 000001 12 00000000") + b"d"
    assert read_all(data) == [RtmpMessage(csid, 18, 0, 7, b"d")]
    # The writer picks the shortest encoding, which is the one given here.
    assert encode_basic_header(0, csid) == h(basic)


def test_fmt3_continuation_with_two_byte_csid() -> None:
    payload = bytes(130)
    data = h("00 10 000000 000082 09 01000000") + payload[:128] + h("c0 10") + payload[128:]
    assert read_all(data) == [RtmpMessage(80, 9, 1, 0, payload)]


def test_encode_basic_header_rejects_reserved_csids() -> None:
    for csid in (0, 1, 65600):
        with pytest.raises(ValueError):
            encode_basic_header(0, csid)


# -- extended timestamps ----------------------------------------------------------------


def test_extended_timestamp_on_fmt0_and_its_continuation_chunks() -> None:
    payload = bytes(range(256)) + b"tail"
    data = (
        h("06 ffffff 000104 09 01000000 01000000")
        + payload[:128]
        + h("c6 01000000")
        + payload[128:256]
        + h("c6 01000000")
        + payload[256:]
    )
    assert read_all(data) == [RtmpMessage(6, 9, 1, 0x01000000, payload)]


def test_continuation_chunks_without_the_extended_timestamp_are_tolerated() -> None:
    payload = bytes(range(1, 201))
    data = h("06 ffffff 0000c8 09 01000000 01000000") + payload[:128] + h("c6") + payload[128:]
    assert read_all(data) == [RtmpMessage(6, 9, 1, 0x01000000, payload)]


def test_fmt3_new_message_after_extended_header_reads_the_extended_field() -> None:
    data = (
        h("04 ffffff 000001 08 01000000 01000000")
        + b"a"
        + h("c4 01000000")  # new message, fmt 3: the delta is the extended value
        + b"b"
    )
    assert [m.timestamp for m in read_all(data)] == [0x01000000, 0x02000000]


def test_extended_delta_on_fmt1() -> None:
    data = (
        h("04 000010 000001 08 01000000")
        + b"a"
        + h("44 ffffff 000001 08 00ffffff")  # delta 0xFFFFFF needs the extended field
        + b"b"
    )
    assert [m.timestamp for m in read_all(data)] == [0x10, 0x10 + 0xFFFFFF]


def test_timestamps_wrap_at_32_bits_in_the_chunk_layer() -> None:
    data = h("04 ffffff 000001 08 01000000 fffffff0") + b"a" + h("84 000020") + b"b"
    assert [m.timestamp for m in read_all(data)] == [0xFFFFFFF0, 0x10]


# -- chunk size, abort, interleaving ----------------------------------------------------------


def test_set_chunk_size_applies_to_the_next_message() -> None:
    payload = bytes(300)
    data = (
        h("02 000000 000004 01 00000000 00000100")  # chunk size 256
        + h("06 000000 00012c 09 01000000")
        + payload[:256]
        + h("c6")
        + payload[256:]
    )
    reader = ChunkReader()
    assert read_all(data, reader) == [RtmpMessage(6, 9, 1, 0, payload)]
    assert reader.chunk_size == 256


def test_set_chunk_size_from_another_csid_in_the_middle_of_a_message() -> None:
    payload = bytes(range(256)) * 2
    data = (
        h("06 000000 000200 09 01000000")
        + payload[:128]  # chunk size 128 so far
        + h("02 000000 000004 01 00000000 00001000")  # csid 2: chunk size 4096
        + h("c6")
        + payload[128:]  # the rest, 384 bytes, in one chunk
    )
    assert read_all(data) == [RtmpMessage(6, 9, 1, 0, payload)]
    assert read_bytewise(data) == [RtmpMessage(6, 9, 1, 0, payload)]


def test_interleaved_chunk_streams() -> None:
    video = bytes([0xAA]) * 200
    audio = bytes([0xBB]) * 150
    data = (
        h("06 000000 0000c8 09 01000000")
        + video[:128]
        + h("04 000000 000096 08 01000000")
        + audio[:128]
        + h("c6")
        + video[128:]
        + h("c4")
        + audio[128:]
    )
    assert read_all(data) == [
        RtmpMessage(6, 9, 1, 0, video),
        RtmpMessage(4, 8, 1, 0, audio),
    ]


def test_abort_discards_the_partial_message() -> None:
    data = (
        h("06 000000 0000c8 09 01000000")
        + bytes(128)
        + h("02 000000 000004 02 00000000 00000006")  # Abort csid 6
        + h("06 000010 000002 09 01000000")
        + b"ok"
    )
    assert read_all(data) == [RtmpMessage(6, 9, 1, 16, b"ok")]


def test_abort_of_an_unknown_csid_is_harmless() -> None:
    data = h("02 000000 000004 02 00000000 00000030") + h("03 000000 000001 14 00000000") + b"x"
    assert read_all(data) == [RtmpMessage(3, 20, 0, 0, b"x")]


def test_incomplete_chunk_is_buffered_until_it_completes() -> None:
    data = h("03 000000 000005 14 00000000") + b"hello"
    reader = ChunkReader()
    reader.feed(data[:9])
    assert reader.next_message() is None
    reader.feed(data[9:15])
    assert reader.next_message() is None
    reader.feed(data[15:])
    assert reader.next_message() == RtmpMessage(3, 20, 0, 0, b"hello")
    assert reader.buffered == 0


def test_bytewise_feed_matches_whole_feed() -> None:
    data = (
        h("02 000000 000004 01 00000000 00000040")  # chunk size 64
        + h("06 ffffff 000050 09 01000000 01000000")
        + bytes(64)
        + h("c6 01000000")
        + bytes(16)
        + h("00 10 000001 000003 12 00000000")
        + b"abc"
        + h("c6 01000000")
        + bytes(64)
        + h("c6 01000000")
        + bytes(16)
    )
    whole = read_all(data)
    assert len(whole) == 3
    assert read_bytewise(data) == whole


def test_a_payload_is_a_bytes_object_whatever_the_splits() -> None:
    payload = bytes(range(256)) * 3
    data = ChunkWriter(128).write(6, 9, 1, 0, payload) + ChunkWriter(128).write(4, 8, 1, 0, b"a")
    for split in (1, 13, 128, 129, 141, 500, len(data) - 1):
        reader = ChunkReader()
        messages = read_all(data[:split], reader) + read_all(data[split:], reader)
        assert [type(m.payload) for m in messages] == [bytes, bytes]
        assert [m.payload for m in messages] == [payload, b"a"]
        assert reader.buffered == 0


def test_a_mutable_buffer_fed_in_may_be_reused_by_the_caller() -> None:
    payload = bytes(range(200))
    data = h("06 000000 0000c8 09 01000000") + payload[:128] + h("c6") + payload[128:]
    reader = ChunkReader()
    scratch = bytearray(data[:100])  # a message and a chunk left unfinished in it
    reader.feed(scratch)
    assert reader.next_message() is None
    scratch[:] = bytes(100)  # the caller reads the next input into the same buffer
    reader.feed(memoryview(data[100:]))
    assert reader.next_message() == RtmpMessage(6, 9, 1, 0, payload)


# -- safety limits ------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["00000000", "80000000", "ffffffff"])
def test_invalid_chunk_sizes(size: str) -> None:
    with pytest.raises(ChunkError):
        read_all(h("02 000000 000004 01 00000000") + h(size))


def test_largest_chunk_size_is_accepted() -> None:
    reader = ChunkReader()
    read_all(h("02 000000 000004 01 00000000 7fffffff"), reader)
    assert reader.chunk_size == 0x7FFFFFFF


def test_message_over_the_size_limit() -> None:
    reader = ChunkReader(max_message_size=1000)
    reader.feed(h("06 000000 0003e9 09 01000000"))
    with pytest.raises(ChunkError, match="exceeds"):
        reader.next_message()


def test_too_many_chunk_streams() -> None:
    reader = ChunkReader(max_chunk_streams=4)
    data = b"".join(h(f"{csid:02x} 000000 000001 12 00000000") + b"x" for csid in range(2, 6))
    assert len(read_all(data, reader)) == 4
    reader.feed(h("06 000000 000001 12 00000000") + b"x")
    with pytest.raises(ChunkError, match="chunk streams"):
        reader.next_message()


def test_too_much_partial_data_across_chunk_streams() -> None:
    reader = ChunkReader(max_message_size=300)
    data = b"".join(h(f"{csid:02x} 000000 00012c 09 01000000") + bytes(128) for csid in (4, 5))
    reader.feed(data)
    assert reader.next_message() is None
    reader.feed(h("06 000000 00012c 09 01000000") + bytes(128))
    with pytest.raises(ChunkError, match="partially"):
        reader.next_message()


def test_new_header_inside_an_unfinished_message() -> None:
    data = h("06 000000 0000c8 09 01000000") + bytes(128) + h("86 000000") + bytes(72)
    with pytest.raises(ChunkError, match="unfinished"):
        read_all(data)


def test_short_set_chunk_size_and_abort() -> None:
    for type_id in ("01", "02"):
        with pytest.raises(ChunkError):
            read_all(h(f"02 000000 000002 {type_id} 00000000 0001"))


# -- writer -------------------------------------------------------------------------------


def test_writer_splits_with_fmt3_continuations() -> None:
    payload = bytes(range(200))
    out = ChunkWriter(128).write(3, 20, 0, 0, payload)
    assert out == h("03 000000 0000c8 14 00000000") + payload[:128] + h("c3") + payload[128:]


def test_writer_extended_timestamp_repeats_on_continuations() -> None:
    payload = bytes(10)
    out = ChunkWriter(4).write(70, 9, 1, 0x01020304, payload)
    assert out == (
        h("00 06 ffffff 00000a 09 01000000 01020304")
        + payload[:4]
        + h("c0 06 01020304")
        + payload[4:8]
        + h("c0 06 01020304")
        + payload[8:]
    )


def test_writer_output_reads_back() -> None:
    writer = ChunkWriter(64)
    messages = [
        RtmpMessage(2, 1, 0, 0, b"\x00\x00\x00\x40"),  # Set Chunk Size 64
        RtmpMessage(3, 20, 0, 0, bytes(300)),
        RtmpMessage(400, 9, 1, 0xFFFFFF, bytes(range(130))),
        RtmpMessage(5, 8, 1, 12, b""),
    ]
    data = b"".join(
        writer.write(m.csid, m.type_id, m.stream_id, m.timestamp, m.payload) for m in messages
    )
    assert read_all(data) == [messages[1], messages[2], messages[3]]


# -- how much input the next message needs -----------------------------------------


def test_bytes_wanted_is_what_the_unfinished_message_lacks_with_its_chunk_headers() -> None:
    reader = ChunkReader()
    assert reader.bytes_wanted() == 1  # nothing unfinished: the next message may be short
    payload = bytes(300)
    # 300 bytes in chunks of 128: 128 + 1 + 128 + 1 + 44
    data = h("06 000000 00012c 09 01000000") + payload[:128] + h("c6") + payload[128:256]
    data += h("c6") + payload[256:]
    assert read_all(data[: 12 + 128], reader) == []
    assert reader.bytes_wanted() == 172 + 2  # 172 payload bytes in 2 more chunks
    assert read_all(data[140:150], reader) == []  # held, not yet a whole chunk
    assert reader.bytes_wanted() == 174 - 10
    assert read_all(data[150:-1], reader) == []
    assert reader.bytes_wanted() == 1
    assert read_all(data[-1:], reader) == [RtmpMessage(6, 9, 1, 0, payload)]
    assert reader.bytes_wanted() == 1


def test_bytes_wanted_takes_the_nearest_of_two_unfinished_messages() -> None:
    reader = ChunkReader()
    video = h("06 000000 000190 09 01000000") + bytes(128)  # 400 bytes, 272 to go
    audio = h("04 000000 0000c8 08 01000000") + bytes(128)  # 200 bytes, 72 to go
    assert read_all(video + audio, reader) == []
    assert reader.bytes_wanted() == 72 + 1
