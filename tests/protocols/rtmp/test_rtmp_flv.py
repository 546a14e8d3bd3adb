"""FLV tag bodies: legacy AVC/AAC and Enhanced RTMP v2 video and audio."""

from __future__ import annotations

import pytest

from live.protocols.rtmp.errors import FlvError
from live.protocols.rtmp.flv import (
    CodedFrame,
    SequenceEnd,
    SequenceStart,
    parse_audio_tag,
    parse_video_tag,
)

AVCC = bytes.fromhex("0164001fffe100046764001f01000468ee3c80")
HVCC = bytes.fromhex("0101600000009000000000005df000fcfdf8f800000f03")
NALUS = bytes.fromhex("00000005 6588840021")
ASC = bytes.fromhex("1210")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- legacy video -----------------------------------------------------------------------------


def test_legacy_avc_sequence_header() -> None:
    assert parse_video_tag(h("17 00 000000") + AVCC) == [SequenceStart("h264", AVCC)]


def test_legacy_avc_keyframe_with_positive_cts() -> None:
    assert parse_video_tag(h("17 01 000028") + NALUS) == [CodedFrame("h264", NALUS, 40, True)]


def test_legacy_avc_inter_frame_with_negative_cts() -> None:
    assert parse_video_tag(h("27 01 ffffd8") + NALUS) == [CodedFrame("h264", NALUS, -40, False)]


def test_legacy_avc_cts_extremes() -> None:
    assert parse_video_tag(h("27 01 800000") + NALUS)[0].composition_time == -(1 << 23)
    assert parse_video_tag(h("27 01 7fffff") + NALUS)[0].composition_time == (1 << 23) - 1


def test_legacy_avc_end_of_sequence() -> None:
    assert parse_video_tag(h("17 02 000000")) == [SequenceEnd("h264")]


def test_legacy_hevc_codec_id_12() -> None:
    assert parse_video_tag(h("1c 00 000000") + HVCC) == [SequenceStart("hevc", HVCC)]


@pytest.mark.parametrize("body", ["", "57 00", "52", "17 01 000000", "17 00 000000"])
def test_skipped_video(body: str) -> None:
    # empty body, command frames (type 5), an empty NALU payload, an empty avcC
    assert parse_video_tag(h(body)) == []


@pytest.mark.parametrize("body", ["12 00 000000 00", "14 00", "17 03 000000", "17 01", "17"])
def test_bad_legacy_video(body: str) -> None:
    # H.263, VP6, unknown AVCPacketType, truncated headers
    with pytest.raises(FlvError):
        parse_video_tag(h(body))


# -- legacy audio -----------------------------------------------------------------------------


def test_legacy_aac() -> None:
    assert parse_audio_tag(h("af 00") + ASC) == [SequenceStart("aac", ASC)]
    assert parse_audio_tag(h("af 01 21100504")) == [CodedFrame("aac", h("21100504"))]


def test_zero_length_audio_is_skipped() -> None:
    assert parse_audio_tag(b"") == []
    assert parse_audio_tag(h("af 01")) == []


def test_legacy_mp3() -> None:
    assert parse_audio_tag(h("2f fffb9064")) == [CodedFrame("mp3", h("fffb9064"))]


@pytest.mark.parametrize("body", ["b6 00", "af", "af 02 00", "06 00"])
def test_bad_legacy_audio(body: str) -> None:
    # Speex, a lone AAC byte, unknown AACPacketType, raw PCM
    with pytest.raises(FlvError):
        parse_audio_tag(h(body))


# -- Enhanced RTMP video ----------------------------------------------------------------------


def test_hvc1_sequence_start() -> None:
    assert parse_video_tag(h("90") + b"hvc1" + HVCC) == [SequenceStart("hevc", HVCC)]


def test_hvc1_coded_frames_with_negative_cts() -> None:
    body = h("91") + b"hvc1" + h("ffff9c") + NALUS
    assert parse_video_tag(body) == [CodedFrame("hevc", NALUS, -100, True)]


def test_hvc1_coded_frames_x_has_no_cts() -> None:
    body = h("a3") + b"hvc1" + NALUS  # frame type 2 (inter), CodedFramesX
    assert parse_video_tag(body) == [CodedFrame("hevc", NALUS, 0, False)]


def test_hvc1_sequence_end() -> None:
    assert parse_video_tag(h("92") + b"hvc1") == [SequenceEnd("hevc")]


def test_avc1_coded_frames() -> None:
    body = h("91") + b"avc1" + h("000021") + NALUS
    assert parse_video_tag(body) == [CodedFrame("h264", NALUS, 33, True)]


@pytest.mark.parametrize(
    ("fourcc", "codec"), [(b"av01", "av1"), (b"vp09", "vp9"), (b"vp08", "vp8")]
)
def test_codecs_without_cts(fourcc: bytes, codec: str) -> None:
    assert parse_video_tag(h("90") + fourcc + h("81")) == [SequenceStart(codec, h("81"))]
    # CodedFrames for these carries no composition time: every byte is frame data.
    assert parse_video_tag(h("a1") + fourcc + h("123456")) == [
        CodedFrame(codec, h("123456"), 0, False)
    ]


def test_metadata_and_mpeg2ts_sequence_start_are_skipped() -> None:
    assert parse_video_tag(h("94") + b"hvc1" + h("02 0009") + b"colorInfo") == []
    assert parse_video_tag(h("95") + b"av01" + h("8001")) == []


def test_enhanced_command_frame_is_skipped() -> None:
    assert parse_video_tag(h("d1 01")) == []  # frame type 5, one command byte, no FourCC


def test_modex_timestamp_offset_is_skipped() -> None:
    # ModEx: size 3 (UI8 2 + 1), 3 bytes of nanoseconds, then ModExType 0 | CodedFrames
    body = h("97 02 0003e8 01") + b"hvc1" + h("000000") + NALUS
    assert parse_video_tag(body) == [CodedFrame("hevc", NALUS, 0, True)]


def test_modex_with_escaped_size() -> None:
    data = bytes(300)
    body = h("97 ff") + (len(data) - 1).to_bytes(2, "big") + data + h("00") + b"hvc1" + HVCC
    assert parse_video_tag(body) == [SequenceStart("hevc", HVCC)]


def test_multitrack_returns_the_default_track_only() -> None:
    track0 = h("000010") + NALUS
    track1 = h("000020") + h("00000002 4101")
    body = (
        h("96 11")  # Multitrack; ManyTracks | CodedFrames
        + b"avc1"
        + h("00")
        + len(track0).to_bytes(3, "big")
        + track0
        + h("01")
        + len(track1).to_bytes(3, "big")
        + track1
    )
    assert parse_video_tag(body) == [CodedFrame("h264", NALUS, 16, True)]


def test_multitrack_many_codecs_and_one_track() -> None:
    body = (
        h("96 20")  # ManyTracksManyCodecs | SequenceStart
        + b"vp09"
        + h("01 000002 aabb")
        + b"hvc1"
        + h("00")
        + len(HVCC).to_bytes(3, "big")
        + HVCC
    )
    assert parse_video_tag(body) == [SequenceStart("hevc", HVCC)]
    one = h("96 00") + b"av01" + h("00") + h("81")  # OneTrack: no size, data to the end
    assert parse_video_tag(one) == [SequenceStart("av1", h("81"))]


@pytest.mark.parametrize(
    "body",
    [
        "90 78787878 00",  # unknown FourCC "xxxx"
        "98 68766331 00",  # packet type 8
        "9f 68766331 00",  # packet type 15
        "96 16 68766331",  # multitrack inside multitrack
        "96 31 68766331",  # multitrack type 3
        "96 11 61766331 00 000010 00",  # track size beyond the data
        "91 68766331 0000",  # truncated CTS
        "90 6876",  # truncated FourCC
        "97 05 00",  # truncated ModEx
    ],
)
def test_bad_enhanced_video(body: str) -> None:
    with pytest.raises(FlvError):
        parse_video_tag(h(body))


# -- Enhanced RTMP audio ----------------------------------------------------------------------

OPUS_HEAD = b"OpusHead" + h("0102 3801 80bb0000 0000 00")


@pytest.mark.parametrize(
    ("fourcc", "codec"),
    [
        (b"mp4a", "aac"),
        (b"Opus", "opus"),
        (b"fLaC", "flac"),
        (b"ac-3", "ac3"),
        (b"ec-3", "eac3"),
        (b".mp3", "mp3"),
    ],
)
def test_enhanced_audio(fourcc: bytes, codec: str) -> None:
    assert parse_audio_tag(h("90") + fourcc + OPUS_HEAD) == [SequenceStart(codec, OPUS_HEAD)]
    assert parse_audio_tag(h("91") + fourcc + h("fc01")) == [CodedFrame(codec, h("fc01"))]
    assert parse_audio_tag(h("92") + fourcc) == [SequenceEnd(codec)]
    assert parse_audio_tag(h("94") + fourcc + h("01 02")) == []  # multichannel config


def test_enhanced_audio_modex_and_multitrack() -> None:
    modex = h("97 00 07 01") + b"Opus" + h("fc")
    assert parse_audio_tag(modex) == [CodedFrame("opus", h("fc"))]
    multitrack = (
        h("95 11") + b"Opus" + h("01 000001 aa") + h("00 000002 fcff")
    )  # ManyTracks | CodedFrames, track 1 then track 0
    assert parse_audio_tag(multitrack) == [CodedFrame("opus", h("fcff"))]


def test_empty_enhanced_config_is_skipped() -> None:
    assert parse_audio_tag(h("90") + b"Opus") == []


@pytest.mark.parametrize(
    "body",
    [
        "90 76727273 00",  # unknown FourCC "vrrs"
        "93 4f707573 00",  # packet type 3
        "96 4f707573 00",  # packet type 6
        "95 15 4f707573",  # multitrack inside multitrack
        "90 4f70",  # truncated FourCC
    ],
)
def test_bad_enhanced_audio(body: str) -> None:
    with pytest.raises(FlvError):
        parse_audio_tag(h(body))
