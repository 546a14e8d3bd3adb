"""One encoding pass over the source: decode once, cut the clip, scale to each rung
and encode H.264 with keyframes at the same timestamps in every rendition, encode
the audio to AAC, and write each rendition as fMP4 HLS.

Keyframes are forced by time (every `keyframe_s` of output time, scene cuts off),
not left to each encoder: every rung sees the same frames with the same
timestamps, so every rung has its IDRs on the same frames and a player can switch
at any segment. The cut is frame-exact: decoding starts at the keyframe before
`clip_start_s`, the frames before it are dropped, and output time starts at 0
with the first frame at or after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.resampler import AudioResampler
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from live.ladder.plan import Rung
from live.vod.hls_output import open_rendition
from live.vod.plan import AUDIO, AUDIO_BITRATE, EncodePass
from live.vod.probe import MediaRejected, SourceInfo

VIDEO_TIME_BASE = Fraction(1, 90000)
_EPSILON = 1e-4  # seconds: timestamps closer than this are the same instant


@dataclass(frozen=True, slots=True)
class Clip:
    start_s: float = 0.0
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    preset: str = "veryfast"
    keyframe_s: float = 2.0
    segment_s: float = 2.0
    threads: int = 0  # x264's own choice


class _VideoRendition:
    def __init__(self, rung: Rung, out_dir: Path, rate: Fraction, settings: EncodeSettings) -> None:
        self.rung = rung
        self.container = open_rendition(out_dir, rung.name, settings.segment_s)
        stream = self.container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = rung.width, rung.height, "yuv420p"
        stream.time_base = VIDEO_TIME_BASE
        context = stream.codec_context
        context.time_base = VIDEO_TIME_BASE
        context.bit_rate = rung.bitrate
        # IDRs come from `encode` by time; this only bounds a GOP if that ever stopped.
        context.gop_size = max(1, math.ceil(4 * settings.keyframe_s * float(rate)))
        context.thread_count = settings.threads
        context.options = {
            "preset": settings.preset,
            "forced-idr": "1",
            "sc_threshold": "0",
            "maxrate": str(rung.bitrate * 3 // 2),
            "bufsize": str(rung.bitrate * 2),
        }
        self.stream = stream
        self.scaler = VideoReformatter()

    def encode(self, frame: av.VideoFrame | None, pts: int = 0, keyframe: bool = False) -> None:
        if frame is None:
            packets = self.stream.encode(None)
        else:
            picture = self.scaler.reformat(
                frame, self.rung.width, self.rung.height, "yuv420p",
                interpolation=Interpolation.BICUBIC,
            )  # fmt: skip
            picture.pts = pts
            picture.time_base = VIDEO_TIME_BASE
            picture.pict_type = PictureType.I if keyframe else PictureType.NONE
            packets = self.stream.encode(picture)
        self.container.mux(packets)


class _AudioRendition:
    def __init__(self, out_dir: Path, source: av.audio.stream.AudioStream, segment_s: float):
        rate = source.codec_context.sample_rate
        self.rate = rate if rate in (44100, 48000) else 48000
        layout = "mono" if source.codec_context.channels == 1 else "stereo"
        self.container = open_rendition(out_dir, AUDIO, segment_s)
        self.stream = self.container.add_stream("aac", rate=self.rate, layout=layout)
        self.stream.bit_rate = AUDIO_BITRATE
        self.stream.time_base = Fraction(1, self.rate)
        self.resampler = AudioResampler(format="fltp", layout=layout, rate=self.rate,
                                        frame_size=1024)  # fmt: skip
        self.samples = 0

    def encode(self, frame: av.AudioFrame | None) -> None:
        for piece in self.resampler.resample(frame):
            piece.pts = self.samples
            piece.time_base = self.stream.time_base
            self.samples += piece.samples
            self.container.mux(self.stream.encode(piece))
        if frame is None:
            self.container.mux(self.stream.encode(None))


def encode_pass(
    source_path: str,
    source: SourceInfo,
    step: EncodePass,
    out_dir: Path,
    *,
    clip: Clip,
    settings: EncodeSettings,
    progress: Callable[[float], None],
) -> float:
    """Run the pass; the output's duration in seconds (of its video, else audio)."""
    start = source.start_s + clip.start_s
    available = source.duration_s - clip.start_s
    if available <= 0:
        raise MediaRejected(
            "processing_failed",
            f"clip_start_s {clip.start_s:g} is past the end of the source"
            f" ({source.duration_s:.3f} s)",
        )
    length = min(available, clip.duration_s) if clip.duration_s is not None else available
    end = start + length if clip.duration_s is not None else math.inf
    with av.open(source_path) as container:
        video_in = container.streams.video[0] if step.rungs else None
        audio_in = container.streams.audio[0] if step.audio and container.streams.audio else None
        if video_in is not None:
            video_in.thread_type = "AUTO"
        if clip.start_s > 0:
            container.seek(int(start * 1_000_000), backward=True, any_frame=False)
        rate = Fraction(video_in.average_rate or 30) if video_in is not None else Fraction(30)
        videos = [_VideoRendition(rung, out_dir, rate, settings) for rung in step.rungs]
        audio = (
            _AudioRendition(out_dir, audio_in, settings.segment_s) if audio_in is not None else None
        )
        next_keyframe = 0.0
        last_out = -1.0
        video_done, audio_done = video_in is None, audio_in is None
        produced = 0.0
        try:
            for packet in container.demux([s for s in (video_in, audio_in) if s is not None]):
                is_video = packet.stream is video_in
                if (video_done and is_video) or (audio_done and not is_video):
                    continue
                for frame in packet.decode():
                    at = frame.time
                    if at is None:
                        continue
                    if is_video:
                        if at < start - _EPSILON:
                            continue
                        if at >= end - _EPSILON:
                            video_done = True
                            break
                        out = at - start
                        if out <= last_out:  # a repeated timestamp: x264 refuses it
                            continue
                        last_out = out
                        keyframe = out >= next_keyframe - _EPSILON
                        while next_keyframe <= out + _EPSILON:
                            next_keyframe += settings.keyframe_s
                        pts = round(out / VIDEO_TIME_BASE)
                        for rendition in videos:
                            rendition.encode(frame, pts, keyframe)
                        produced = out + 1 / float(rate)
                        progress(min(1.0, out / length))
                    else:
                        frame_end = at + frame.samples / frame.sample_rate
                        if frame_end <= start + _EPSILON:
                            continue
                        if at >= end - _EPSILON:
                            audio_done = True
                            break
                        assert audio is not None
                        audio.encode(frame)
                        if video_in is None:
                            produced = frame_end - start
                            progress(min(1.0, produced / length))
                if video_done and audio_done:
                    break
        except av.FFmpegError as error:
            message = f"the source cannot be decoded: {error}"
            raise MediaRejected("processing_failed", message) from None
        try:
            for rendition in videos:
                rendition.encode(None)
            if audio is not None:
                audio.encode(None)
                if video_in is None:
                    produced = audio.samples / audio.rate
        finally:
            for output in [*videos, *([audio] if audio else [])]:
                output.container.close()
    if produced <= 0:
        raise MediaRejected("processing_failed", "no frame of the source could be decoded")
    return produced
