import pytest

from live.media.codecs import (
    CodecConfigError,
    avc_codec_string,
    avc_dimensions,
    hevc_codec_string,
    parse_audio_specific_config,
)


def test_avc_codec_string_and_dimensions_from_a_real_encoder(clip):
    assert clip.video is not None
    assert clip.video.codec_string == avc_codec_string(clip.video.extradata)
    assert clip.video.codec_string.startswith("avc1.")
    assert len(clip.video.codec_string) == len("avc1.64000d")
    assert avc_dimensions(clip.video.extradata) == (320, 180)  # 180 needs frame cropping


def test_audio_specific_config_aac_lc_48k_mono():
    # object type 2 (5 bits), rate index 3 = 48000 (4 bits), channel config 1
    asc = bytes([0b00010001, 0b10001000])
    parsed = parse_audio_specific_config(asc)
    assert (parsed.object_type, parsed.sample_rate, parsed.channels) == (2, 48000, 1)
    assert parsed.codec_string == "mp4a.40.2"


def test_audio_specific_config_explicit_rate_and_errors():
    # object type 2, rate index 15 then a 24-bit rate (44100), channels 2
    bits = "00010" + "1111" + format(44100, "024b") + "0010" + "000"
    asc = int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert parse_audio_specific_config(asc).sample_rate == 44100
    with pytest.raises(CodecConfigError):
        parse_audio_specific_config(b"\x12")


def test_hevc_codec_string_main_profile_level_93():
    record = bytearray(23)
    record[0] = 1
    record[1] = 0x01  # profile space 0, main tier, profile 1
    record[2:6] = (0x60000000).to_bytes(4, "big")  # compatibility flags 1 and 2
    record[6] = 0x90  # progressive + frame-only constraint flags
    record[12] = 93
    assert hevc_codec_string(bytes(record)) == "hvc1.1.6.L93.90"


def test_truncated_records_are_refused():
    for bad in (b"", b"\x01\x64", b"\x02" + bytes(10)):
        with pytest.raises(CodecConfigError):
            avc_codec_string(bad) if len(bad) < 4 else avc_dimensions(bad)
