"""The multivariant playlist of a processed asset, over the renditions stored so
far (the first one while the asset is `viewable`, all of them once it is `ready`),
with each rendition's bandwidth measured from its stored segments (HLS §4.4.6.2:
BANDWIDTH is the peak segment bit rate, AVERAGE-BANDWIDTH the mean)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from live.recording import layout

AUDIO_GROUP = "audio"


@dataclass(frozen=True, slots=True)
class Measured:
    peak_bps: int
    average_bps: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class VideoEntry:
    name: str
    width: int
    height: int
    codec: str
    rate: Measured


@dataclass(frozen=True, slots=True)
class AudioEntry:
    codec: str
    rate: Measured


def measure(playlist: str, sizes: dict[str, int]) -> Measured:
    """Bit rates of a media playlist's segments, from `sizes` (object name -> bytes)."""
    peak = total_bits = 0.0
    duration = 0.0
    length = None
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            length = float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#") and length is not None:
            bits = sizes.get(line, 0) * 8
            total_bits += bits
            duration += length
            if length > 0.5:  # a last sliver of a segment says little about the peak
                peak = max(peak, bits / length)
            length = None
    average = total_bits / duration if duration > 0 else 0.0
    return Measured(math.ceil(max(peak, average)), math.ceil(average), duration)


def render_multivariant(videos: list[VideoEntry], audio: AudioEntry | None) -> str:
    """Highest rendition first; video-only renditions name the audio group."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None and videos:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Audio",DEFAULT=YES,'
            f'AUTOSELECT=YES,URI="{layout.rendition_playlist("audio")}"'
        )
    for video in sorted(videos, key=lambda v: v.height, reverse=True):
        peak, average = video.rate.peak_bps, video.rate.average_bps
        codecs = video.codec
        group = ""
        if audio is not None:
            peak, average = peak + audio.rate.peak_bps, average + audio.rate.average_bps
            codecs += "," + audio.codec
            group = f',AUDIO="{AUDIO_GROUP}"'
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},"
            f'RESOLUTION={video.width}x{video.height},CODECS="{codecs}"{group}'
        )
        lines.append(layout.rendition_playlist(video.name))
    if not videos and audio is not None:  # audio only
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={audio.rate.peak_bps},"
            f'AVERAGE-BANDWIDTH={audio.rate.average_bps},CODECS="{audio.codec}"'
        )
        lines.append(layout.rendition_playlist("audio"))
    return "\n".join(lines) + "\n"
