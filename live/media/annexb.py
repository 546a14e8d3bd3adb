"""H.264/HEVC Annex B byte streams (as MPEG-TS carries them) → the MP4 form.

MPEG-TS carries video as start-code delimited NAL units with the parameter sets
(SPS/PPS, and VPS for HEVC) in band; MP4 and our MediaPacket want 4-byte length
prefixes and the parameter sets in a decoder configuration record (avcC, hvcC).
"""

from __future__ import annotations

import struct
from typing import Final

from live.media.codecs import BitReader, CodecConfigError, unescape_rbsp

H264_SPS: Final = 7
H264_PPS: Final = 8
H264_AUD: Final = 9
H264_IDR: Final = 5
H264_FILLER: Final = 12
HEVC_VPS: Final = 32
HEVC_SPS: Final = 33
HEVC_PPS: Final = 34
HEVC_AUD: Final = 35
HEVC_FILLER: Final = 38
HEVC_IRAP: Final = range(16, 24)  # BLA, IDR, CRA (and reserved IRAP types)

# NAL units that do not belong in an MP4 sample: parameter sets live in the
# sample entry, access unit delimiters and filler carry nothing.
_H264_OUT_OF_BAND: Final = frozenset({H264_SPS, H264_PPS, H264_AUD, H264_FILLER})
_HEVC_OUT_OF_BAND: Final = frozenset({HEVC_VPS, HEVC_SPS, HEVC_PPS, HEVC_AUD, HEVC_FILLER})


def split_nal_units(data: bytes) -> list[bytes]:
    """NAL units of an Annex B stream (3- or 4-byte start codes), without start codes."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    if start < 0:
        return units
    start += 3
    while True:
        end = data.find(b"\x00\x00\x01", start)
        # before a start code, a 4-byte start code's leading zero (or trailing
        # zero bytes) ends up on this unit: strip it
        unit = data[start:] if end < 0 else data[start:end].rstrip(b"\x00")
        if unit:
            units.append(unit)
        if end < 0:
            return units
        start = end + 3


def h264_type(unit: bytes) -> int:
    return unit[0] & 0x1F


def hevc_type(unit: bytes) -> int:
    return (unit[0] >> 1) & 0x3F


def length_prefixed(units: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in units)


def h264_sample(units: list[bytes]) -> tuple[bytes, bool]:
    """An access unit as an MP4 sample (parameter sets, AUDs, filler removed) and
    whether it is an IDR picture."""
    kept = [u for u in units if h264_type(u) not in _H264_OUT_OF_BAND]
    return length_prefixed(kept), any(h264_type(u) == H264_IDR for u in kept)


def hevc_sample(units: list[bytes]) -> tuple[bytes, bool]:
    kept = [u for u in units if hevc_type(u) not in _HEVC_OUT_OF_BAND]
    return length_prefixed(kept), any(hevc_type(u) in HEVC_IRAP for u in kept)


def avcc_from_parameter_sets(sps: bytes, pps: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1) for one SPS and PPS."""
    if len(sps) < 4:
        raise CodecConfigError("SPS shorter than 4 bytes")
    profile = sps[1]
    record = bytearray([1, profile, sps[2], sps[3], 0xFF, 0xE1])
    record += struct.pack(">H", len(sps)) + sps
    record += b"\x01" + struct.pack(">H", len(pps)) + pps
    if profile in (100, 110, 122, 144):
        chroma, luma_depth, chroma_depth = _h264_chroma(sps)
        record += bytes(
            [0xFC | chroma, 0xF8 | luma_depth, 0xF8 | chroma_depth, 0]  # no SPS extensions
        )
    return bytes(record)


def hvcc_from_parameter_sets(vps: bytes, sps: bytes, pps: bytes) -> bytes:
    """An HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1) for one VPS/SPS/PPS."""
    rbsp = unescape_rbsp(sps[2:])
    if len(rbsp) < 13:
        raise CodecConfigError("SPS too short for a profile_tier_level")
    max_sub_layers_minus1 = (rbsp[0] >> 1) & 0x7
    temporal_id_nested = rbsp[0] & 0x1
    general_ptl = rbsp[1:13]  # profile space/tier/idc, 32 compat flags, 48 constraint bits, level
    chroma, luma_depth, chroma_depth = _hevc_chroma(rbsp, max_sub_layers_minus1)
    record = bytearray([1]) + general_ptl
    record += struct.pack(">H", 0xF000)  # min_spatial_segmentation_idc = 0
    record += bytes([0xFC, 0xFC | chroma, 0xF8 | luma_depth, 0xF8 | chroma_depth])
    record += struct.pack(">H", 0)  # avgFrameRate unknown
    record += bytes([(max_sub_layers_minus1 + 1) << 3 | temporal_id_nested << 2 | 3])
    record += bytes([3])
    for nal_type, unit in ((HEVC_VPS, vps), (HEVC_SPS, sps), (HEVC_PPS, pps)):
        record += bytes([0x80 | nal_type]) + struct.pack(">HH", 1, len(unit)) + unit
    return bytes(record)


def _h264_chroma(sps: bytes) -> tuple[int, int, int]:
    bits = BitReader(unescape_rbsp(sps[4:]))
    bits.read_ue()  # seq_parameter_set_id
    chroma = bits.read_ue()
    if chroma == 3:
        bits.read(1)
    return chroma & 3, bits.read_ue() & 7, bits.read_ue() & 7


def _hevc_chroma(rbsp: bytes, max_sub_layers_minus1: int) -> tuple[int, int, int]:
    bits = BitReader(rbsp[13:])
    flags = [(bits.read(1), bits.read(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        bits.read(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in flags:
        bits.read(88 * profile_present + 8 * level_present)
    bits.read_ue()  # sps_seq_parameter_set_id
    chroma = bits.read_ue()
    if chroma == 3:
        bits.read(1)
    bits.read_ue()  # width
    bits.read_ue()  # height
    if bits.read(1):  # conformance window
        for _ in range(4):
            bits.read_ue()
    return chroma & 3, bits.read_ue() & 7, bits.read_ue() & 7
