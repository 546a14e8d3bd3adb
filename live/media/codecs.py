"""Decoder-configuration records: what HLS needs to know from them.

HLS multivariant playlists carry RFC 6381 CODECS strings and RESOLUTION; both come
from the records publishers send (avcC, hvcC, AudioSpecificConfig) so the playlist
can be written before any frame is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

AAC_SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


class CodecConfigError(ValueError):
    """A decoder configuration record that cannot be understood."""


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    object_type: int
    sample_rate: int
    channels: int

    @property
    def codec_string(self) -> str:
        return f"mp4a.40.{self.object_type}"


def parse_audio_specific_config(asc: bytes) -> AudioSpecificConfig:
    """Read object type, sample rate and channel count (ISO 14496-3 1.6.2.1)."""
    if len(asc) < 2:
        raise CodecConfigError("AudioSpecificConfig shorter than 2 bytes")
    bits = BitReader(asc)
    object_type = bits.read(5)
    if object_type == 31:
        object_type = 32 + bits.read(6)
    index = bits.read(4)
    if index == 15:
        sample_rate = bits.read(24)
    elif index < len(AAC_SAMPLE_RATES):
        sample_rate = AAC_SAMPLE_RATES[index]
    else:
        raise CodecConfigError(f"reserved AAC sample rate index {index}")
    channel_config = bits.read(4)
    channels = 8 if channel_config == 7 else channel_config
    return AudioSpecificConfig(object_type, sample_rate, channels)


def avc_codec_string(avcc: bytes) -> str:
    """`avc1.PPCCLL` from an AVCDecoderConfigurationRecord."""
    if len(avcc) < 4 or avcc[0] != 1:
        raise CodecConfigError("not an AVCDecoderConfigurationRecord")
    return f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def hevc_codec_string(hvcc: bytes) -> str:
    """`hvc1.<space><profile>.<compat>.<tier><level>.<constraints>` (ISO 14496-15 E.3)."""
    if len(hvcc) < 13 or hvcc[0] != 1:
        raise CodecConfigError("not an HEVCDecoderConfigurationRecord")
    profile_space = hvcc[1] >> 6
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile_idc = hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    compat_reversed = int(f"{compat:032b}"[::-1], 2)
    constraints = bytearray(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    space = ("", "A", "B", "C")[profile_space]
    text = f"hvc1.{space}{profile_idc}.{compat_reversed:X}.{tier}{hvcc[12]}"
    if constraints:
        text += "." + ".".join(f"{b:X}" for b in constraints)
    return text


def avc_dimensions(avcc: bytes) -> tuple[int, int]:
    """Width and height from the first SPS of an avcC (ITU-T H.264 7.3.2.1.1)."""
    if len(avcc) < 8 or avcc[0] != 1 or (avcc[5] & 0x1F) == 0:
        raise CodecConfigError("avcC without an SPS")
    sps_length = int.from_bytes(avcc[6:8], "big")
    sps = avcc[8 : 8 + sps_length]
    if len(sps) != sps_length or sps_length < 4:
        raise CodecConfigError("truncated SPS in avcC")
    return _sps_dimensions(unescape_rbsp(sps[1:]))


def hevc_dimensions(hvcc: bytes) -> tuple[int, int]:
    """Width and height from the SPS inside an hvcC (ITU-T H.265 7.3.2.2)."""
    sps = _hevc_sps(hvcc)
    bits = BitReader(unescape_rbsp(sps[2:]))
    bits.read(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.read(3)
    bits.read(1)  # sps_temporal_id_nesting_flag
    bits.read(96)  # general profile_tier_level: 88 bits of profile + 8 bits of level
    sub_layer_flags = [(bits.read(1), bits.read(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        bits.read(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in sub_layer_flags:
        bits.read(88 * profile_present + 8 * level_present)
    bits.read_ue()  # sps_seq_parameter_set_id
    chroma_format_idc = bits.read_ue()
    if chroma_format_idc == 3:
        bits.read(1)
    width = bits.read_ue()
    height = bits.read_ue()
    if bits.read(1):  # conformance_window_flag
        left, right, top, bottom = (bits.read_ue() for _ in range(4))
        sub_width = 2 if chroma_format_idc in (1, 2) else 1
        sub_height = 2 if chroma_format_idc == 1 else 1
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    return width, height


def _hevc_sps(hvcc: bytes) -> bytes:
    if len(hvcc) < 23 or hvcc[0] != 1:
        raise CodecConfigError("not an HEVCDecoderConfigurationRecord")
    offset = 23
    for _ in range(hvcc[22]):
        if offset + 3 > len(hvcc):
            break
        nal_type = hvcc[offset] & 0x3F
        count = int.from_bytes(hvcc[offset + 1 : offset + 3], "big")
        offset += 3
        for _ in range(count):
            length = int.from_bytes(hvcc[offset : offset + 2], "big")
            nal = hvcc[offset + 2 : offset + 2 + length]
            offset += 2 + length
            if nal_type == 33 and len(nal) == length and length > 2:
                return nal
    raise CodecConfigError("hvcC without an SPS")


def _sps_dimensions(rbsp: bytes) -> tuple[int, int]:
    bits = BitReader(rbsp)
    profile_idc = bits.read(8)
    bits.read(16)  # constraint flags, level_idc
    bits.read_ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format_idc = bits.read_ue()
        if chroma_format_idc == 3:
            separate_colour_plane = bits.read(1)
        bits.read_ue()  # bit_depth_luma_minus8
        bits.read_ue()  # bit_depth_chroma_minus8
        bits.read(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.read(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.read(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.read_ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = bits.read_ue()
    if pic_order_cnt_type == 0:
        bits.read_ue()
    elif pic_order_cnt_type == 1:
        bits.read(1)
        bits.read_se()
        bits.read_se()
        for _ in range(bits.read_ue()):
            bits.read_se()
    bits.read_ue()  # max_num_ref_frames
    bits.read(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.read_ue() + 1
    height_map_units = bits.read_ue() + 1
    frame_mbs_only = bits.read(1)
    if not frame_mbs_only:
        bits.read(1)  # mb_adaptive_frame_field_flag
    bits.read(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if bits.read(1):  # frame_cropping_flag
        left, right, top, bottom = (bits.read_ue() for _ in range(4))
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        crop_x = 1 if chroma_array_type == 0 else (2 if chroma_array_type in (1, 2) else 1)
        crop_y = (1 if chroma_array_type in (0, 3) else (2 if chroma_array_type == 1 else 1)) * (
            2 - frame_mbs_only
        )
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    return width, height


def _skip_scaling_list(bits: BitReader, size: int) -> None:
    last, next_ = 8, 8
    for _ in range(size):
        if next_ != 0:
            next_ = (last + bits.read_se() + 256) % 256
        last = next_ if next_ != 0 else last


def unescape_rbsp(data: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 → 00 00)."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


class BitReader:
    """Big-endian bit reader with exp-Golomb codes, for parameter sets."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._remaining = len(data) * 8

    def read(self, count: int) -> int:
        if count > self._remaining:
            raise CodecConfigError("bitstream ended early")
        self._remaining -= count
        return (self._value >> self._remaining) & ((1 << count) - 1)

    def read_ue(self) -> int:
        zeros = 0
        while self.read(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CodecConfigError("exp-Golomb code too long")
        return (1 << zeros) - 1 + self.read(zeros)

    def read_se(self) -> int:
        value = self.read_ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)
