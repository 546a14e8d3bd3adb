"""AAC in ADTS framing (as MPEG-TS carries it) → raw frames + AudioSpecificConfig.

An ADTS header (ISO 13818-7 6.2) repeats the decoder configuration before every
frame; MP4 and our MediaPacket want raw frames and one AudioSpecificConfig.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from live.media.codecs import AAC_SAMPLE_RATES

HEADER_SIZE: Final = 7
SAMPLES_PER_FRAME: Final = 1024


class AdtsError(ValueError):
    """Bytes that are not a well-formed ADTS frame."""


@dataclass(frozen=True, slots=True)
class AdtsFrame:
    object_type: int  # MPEG-4 audio object type (profile + 1): 2 = AAC-LC
    sample_rate_index: int
    channel_config: int
    payload: bytes  # the raw frame, header (and CRC) removed

    @property
    def sample_rate(self) -> int:
        return AAC_SAMPLE_RATES[self.sample_rate_index]

    @property
    def audio_specific_config(self) -> bytes:
        value = self.object_type << 11 | self.sample_rate_index << 7 | self.channel_config << 3
        return value.to_bytes(2, "big")


def parse_adts(data: bytes) -> list[AdtsFrame]:
    """Every ADTS frame in `data` (a PES payload may hold several)."""
    frames: list[AdtsFrame] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_SIZE:
            raise AdtsError("truncated ADTS header")
        b = data[offset : offset + HEADER_SIZE]
        if b[0] != 0xFF or b[1] & 0xF6 != 0xF0:
            raise AdtsError("no ADTS sync word")
        protection_absent = b[1] & 0x01
        profile = b[2] >> 6
        rate_index = (b[2] >> 2) & 0x0F
        channels = (b[2] & 0x01) << 2 | b[3] >> 6
        length = (b[3] & 0x03) << 11 | b[4] << 3 | b[5] >> 5
        blocks = b[6] & 0x03
        header = HEADER_SIZE if protection_absent else HEADER_SIZE + 2
        if rate_index >= len(AAC_SAMPLE_RATES):
            raise AdtsError(f"reserved sample rate index {rate_index}")
        if blocks != 0:
            raise AdtsError("ADTS frames with several raw data blocks are not supported")
        if length < header or offset + length > len(data):
            raise AdtsError("ADTS frame length out of range")
        frames.append(
            AdtsFrame(profile + 1, rate_index, channels, data[offset + header : offset + length])
        )
        offset += length
    return frames
