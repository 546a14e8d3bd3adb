"""H.264 byte-stream helpers: Annex B in, MP4's length-prefixed form and avcC out.

RTP (RFC 6184), MPEG-TS and encoders such as libx264 hand out H.264 as Annex B
(start codes between NAL units, parameter sets in band); MP4, and therefore our
MediaPacket and TrackInfo, want 4-byte length prefixes and the SPS/PPS in an
AVCDecoderConfigurationRecord. These are small pure functions so every ingest and
transcoder converts the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from live.media.annexb import length_prefixed, split_nal_units

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

# Parameter sets and delimiters live in the avcC, not in MP4 samples.
_OUT_OF_BAND = frozenset({NAL_SPS, NAL_PPS, NAL_AUD})


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


# One Annex B splitter and one length-prefixer for every ingest.
split_annexb = split_nal_units
to_avcc = length_prefixed


def split_avcc(sample: bytes) -> list[bytes]:
    """The NAL units of a sample with 4-byte length prefixes."""
    nals = []
    offset = 0
    while offset + 4 <= len(sample):
        size = int.from_bytes(sample[offset : offset + 4], "big")
        offset += 4
        if size == 0 or offset + size > len(sample):
            raise ValueError("truncated length-prefixed NAL unit")
        nals.append(sample[offset : offset + size])
        offset += size
    if offset != len(sample):
        raise ValueError("trailing bytes after the last NAL unit")
    return nals


def avc_decoder_config(sps: Sequence[bytes], pps: Sequence[bytes]) -> bytes:
    """An AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1) with 4-byte lengths.

    Profile, compatibility and level are copied from the first SPS. The
    high-profile extension (chroma format, bit depths) is left out: it is
    optional for readers and every player takes those from the SPS itself.
    """
    if not sps or not pps:
        raise ValueError("an avcC needs at least one SPS and one PPS")
    first = sps[0]
    if len(first) < 4 or nal_type(first) != NAL_SPS:
        raise ValueError("not an SPS")
    if len(sps) > 31 or len(pps) > 255:
        raise ValueError("too many parameter sets for an avcC")
    record = bytearray([1, first[1], first[2], first[3], 0xFC | 3, 0xE0 | len(sps)])
    for unit in sps:
        record += len(unit).to_bytes(2, "big") + unit
    record.append(len(pps))
    for unit in pps:
        record += len(unit).to_bytes(2, "big") + unit
    return bytes(record)


class AccessUnit:
    """One Annex B access unit sorted into what MP4 needs from it."""

    __slots__ = ("keyframe", "pps", "sample", "sps")

    def __init__(self, annexb: bytes) -> None:
        nals = split_annexb(annexb)
        self.sps = [n for n in nals if nal_type(n) == NAL_SPS]
        self.pps = [n for n in nals if nal_type(n) == NAL_PPS]
        self.keyframe = any(nal_type(n) == NAL_IDR for n in nals)
        self.sample = to_avcc(n for n in nals if nal_type(n) not in _OUT_OF_BAND)


class ParameterSets:
    """Remembers the latest SPS/PPS of a stream and says when they change.

    WebRTC senders repeat SPS and PPS before every IDR; the avcC only needs
    rebuilding (a new init section downstream) when their bytes change.
    """

    def __init__(self) -> None:
        self.sps: list[bytes] = []
        self.pps: list[bytes] = []

    def update(self, unit: AccessUnit) -> bytes | None:
        """The new avcC if this access unit changed the parameter sets, else None."""
        sps = unit.sps or self.sps
        pps = unit.pps or self.pps
        if (sps, pps) == (self.sps, self.pps) or not sps or not pps:
            return None
        self.sps, self.pps = list(sps), list(pps)
        return avc_decoder_config(self.sps, self.pps)
