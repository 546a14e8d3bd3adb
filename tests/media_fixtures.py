"""Real encoded media for unit tests: made once per run with the ffmpeg CLI and read
back with PyAV, so packaging is tested on what encoders really produce."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from live.ingest.tracks import audio_track, video_track
from live.media.packet import MediaPacket, TrackInfo


@dataclass(frozen=True)
class Clip:
    video: TrackInfo | None
    audio: TrackInfo | None
    packets: list[MediaPacket]
    frames: int

    @property
    def tracks(self) -> tuple[TrackInfo, ...]:
        return tuple(t for t in (self.video, self.audio) if t is not None)


def gop_args(gop: int, bframes: int) -> list[str]:
    """ffmpeg encoder options for a fixed GOP (keyframes exactly every `gop` frames)."""
    return ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-bf", str(bframes), "-pix_fmt", "yuv420p"]  # fmt: skip


def make_clip(
    directory: Path,
    *,
    seconds: float = 3.0,
    fps: int = 30,
    gop: int = 30,
    bframes: int = 0,
    size: str = "320x180",
    audio: bool = True,
    video: bool = True,
    codec: str = "libx264",
) -> Clip:
    # Debian's ffmpeg cannot put HEVC in FLV; Matroska carries the same hvcC.
    container = "matroska" if codec == "libx265" else "flv"
    name = f"clip-{seconds}-{fps}-{gop}-{bframes}-{size}-{audio}-{video}-{codec}.{container}"
    path = directory / name
    if not path.exists():
        command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
        if video:
            command += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}"]
        if audio:
            command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        command += ["-t", str(seconds)]
        if video:
            command += ["-c:v", codec, *gop_args(gop, bframes)]
            if codec == "libx265":
                command += ["-x265-params", "log-level=error"]
        if audio:
            command += ["-c:a", "aac", "-b:a", "64k"]
        subprocess.run([*command, "-f", container, str(path)], check=True, timeout=60)
    return read_clip(path)


def read_clip(path: Path) -> Clip:
    packets: list[MediaPacket] = []
    video_info = audio_info = None
    frames = 0
    with av.open(str(path)) as container:
        for stream in container.streams:
            extradata = stream.codec_context.extradata or b""
            if stream.type == "video":
                video_info = video_track(stream.codec_context.name, extradata)
            elif stream.type == "audio":
                audio_info = audio_track("aac", extradata)
        for packet in container.demux():
            if packet.dts is None or packet.size == 0:
                continue
            kind = packet.stream.type
            frames += kind == "video"
            packets.append(
                MediaPacket(
                    kind,
                    int(packet.dts),
                    int(packet.pts),
                    bytes(packet),
                    bool(packet.is_keyframe) or kind == "audio",
                    Fraction(packet.time_base),
                )
            )
    return Clip(video_info, audio_info, packets, frames)
