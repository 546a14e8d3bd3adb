"""Synthetic media for the publisher scripts: a moving test pattern and silence,
timestamped for a given frame rate, so every publisher paces the same picture."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av

SAMPLE_RATE = 48_000


def pattern_frame(index: int, width: int, height: int, fps: int) -> av.VideoFrame:
    """Frame `index`: vertical bars shifted by 4 px a frame, grey chroma."""
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = bytes([(index * 4 + column) % 256 for column in range(width)]) * height
    frame.planes[0].update(luma[: frame.planes[0].buffer_size])
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    frame.pts = index
    frame.time_base = Fraction(1, fps)
    return frame


class Silence:
    """Silent audio frames, handed out to keep pace with the video."""

    def __init__(self, audio_format: str, frame_size: int) -> None:
        self.format = audio_format
        self.frame_size = frame_size
        self.samples = 0

    def until(self, video_index: int, fps: int) -> Iterator[av.AudioFrame]:
        """The frames that bring the audio up to the end of video frame `video_index`."""
        while self.samples < (video_index + 1) * SAMPLE_RATE // fps:
            frame = av.AudioFrame(format=self.format, layout="stereo", samples=self.frame_size)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts, frame.sample_rate = self.samples, SAMPLE_RATE
            frame.time_base = Fraction(1, SAMPLE_RATE)
            self.samples += self.frame_size
            yield frame
