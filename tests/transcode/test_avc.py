"""live.media.avc, byte for byte."""

from __future__ import annotations

import pytest

from live.media.avc import (
    AccessUnit,
    ParameterSets,
    avc_decoder_config,
    split_annexb,
    split_avcc,
    to_avcc,
)
from live.media.codecs import avc_codec_string, avc_dimensions

# A real 640x360 High-profile SPS and PPS (from libx264).
SPS = bytes.fromhex("6764001eacd940a02ff9610000030001000003003c8f162d96")
PPS = bytes.fromhex("68ebe3cb22c0")
IDR = bytes.fromhex("65888400ff")
SLICE = bytes.fromhex("419a2233")


def test_split_annexb_with_3_and_4_byte_start_codes_and_trailing_zeros():
    stream = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00" + b"\x00\x00\x01" + IDR
    assert split_annexb(stream) == [SPS, PPS, IDR]
    assert split_annexb(b"") == []
    assert split_annexb(b"\x00\x00\x01") == []


def test_to_avcc_and_back():
    sample = to_avcc([IDR, SLICE])
    assert sample == b"\x00\x00\x00\x05" + IDR + b"\x00\x00\x00\x04" + SLICE
    assert split_avcc(sample) == [IDR, SLICE]
    with pytest.raises(ValueError):
        split_avcc(sample[:-1])


def test_avc_decoder_config_bytes():
    record = avc_decoder_config([SPS], [PPS])
    assert record == (
        bytes([1, 0x64, 0x00, 0x1E, 0xFF, 0xE1])
        + len(SPS).to_bytes(2, "big")
        + SPS
        + bytes([1])
        + len(PPS).to_bytes(2, "big")
        + PPS
    )
    assert avc_codec_string(record) == "avc1.64001e"
    assert avc_dimensions(record) == (640, 360)
    with pytest.raises(ValueError):
        avc_decoder_config([], [PPS])
    with pytest.raises(ValueError):
        avc_decoder_config([PPS], [PPS])


def test_access_unit_moves_parameter_sets_out_of_the_sample():
    unit = AccessUnit(
        b"\x00\x00\x00\x01\x09\xf0"
        + b"\x00\x00\x00\x01"
        + SPS
        + b"\x00\x00\x00\x01"
        + PPS
        + b"\x00\x00\x00\x01"
        + IDR
    )
    assert unit.keyframe
    assert unit.sps == [SPS] and unit.pps == [PPS]
    assert unit.sample == to_avcc([IDR])  # no AUD, SPS, PPS
    delta = AccessUnit(b"\x00\x00\x00\x01" + SLICE)
    assert not delta.keyframe and delta.sample == to_avcc([SLICE])


def test_parameter_sets_report_only_changes():
    sets = ParameterSets()
    first = AccessUnit(b"\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x01" + IDR)
    assert sets.update(first) == avc_decoder_config([SPS], [PPS])
    assert sets.update(first) is None  # repeated before every IDR: nothing new
    assert sets.update(AccessUnit(b"\x00\x00\x01" + SLICE)) is None
    other_pps = PPS[:-1] + b"\xc1"
    changed = AccessUnit(b"\x00\x00\x01" + other_pps + b"\x00\x00\x01" + IDR)
    assert sets.update(changed) == avc_decoder_config([SPS], [other_pps])
