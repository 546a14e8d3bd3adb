"""Codec-neutral media types: what every ingest hands to a Broadcast.

Ingest adapters (RTMP, SRT, WHIP) translate their wire formats into these, so that
everything downstream of the Broadcast (packaging, recording, stats) never needs to
know which protocol a packet came in on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

TrackKind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """The decoder configuration of one track.

    `extradata` is in the form an MP4 sample entry needs: an avcC record for H.264,
    hvcC for HEVC, an AudioSpecificConfig for AAC. Two TrackInfos that compare equal
    describe the same init section, which is how a changed configuration is noticed.
    """

    kind: TrackKind
    codec: str  # "h264", "hevc", "aac", "opus", ...
    extradata: bytes = b""
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    codec_string: str = ""  # RFC 6381 value for HLS CODECS, e.g. "avc1.64001f"


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One access unit (video frame or audio frame) with its timestamps.

    Timestamps are integers in `time_base` units and are already unwrapped by the
    ingest (monotonic 64-bit, no 32-bit or 33-bit wrap). Video payloads are
    length-prefixed NAL units (4-byte lengths, as in MP4), audio payloads are raw
    frames without ADTS headers.
    """

    kind: TrackKind
    dts: int
    pts: int
    data: bytes
    keyframe: bool
    time_base: Fraction = field(default=Fraction(1, 1000))

    @property
    def dts_seconds(self) -> float:
        # Integer arithmetic on the parts: Fraction multiplication is ~20x slower,
        # and this runs for every packet.
        return self.dts * self.time_base.numerator / self.time_base.denominator

    @property
    def pts_seconds(self) -> float:
        return self.pts * self.time_base.numerator / self.time_base.denominator
