"""Ingest health: what the publisher really sends, measured, with advice.

A broadcaster sees `current_session.ingest_health` and `warnings` in the API; the
numbers are measured over a sliding window of what arrived, not taken from the
encoder's metadata (which OBS fills with what it was asked to do, not what it does).
"""

from __future__ import annotations

from collections import deque

from live.media.packet import MediaPacket

_WINDOW_S = 5.0


class IngestHealth:
    def __init__(self, segment_target: float) -> None:
        self.segment_target = segment_target
        self._bytes: deque[tuple[float, int]] = deque()
        self._video_times: deque[float] = deque()
        self._audio_bytes: deque[tuple[float, int]] = deque()
        self._last_keyframe: float | None = None
        self.keyframe_interval: float | None = None
        self.bytes_in = 0
        self.video_frames = 0
        self.audio_frames = 0
        self.extra_warnings: list[str] = []

    def on_packet(self, packet: MediaPacket, received_at: float) -> None:
        """`received_at` is monotonic wall time; media time is taken from the packet."""
        size = len(packet.data)
        self.bytes_in += size
        self._bytes.append((received_at, size))
        if packet.kind == "video":
            self.video_frames += 1
            media_time = packet.dts_seconds
            self._video_times.append(media_time)
            while self._video_times and media_time - self._video_times[0] > _WINDOW_S:
                self._video_times.popleft()
            if packet.keyframe:
                if self._last_keyframe is not None and media_time > self._last_keyframe:
                    self.keyframe_interval = round(media_time - self._last_keyframe, 3)
                self._last_keyframe = media_time
        else:
            self.audio_frames += 1
            self._audio_bytes.append((received_at, size))
        for queue in (self._bytes, self._audio_bytes):
            while queue and received_at - queue[0][0] > _WINDOW_S:
                queue.popleft()

    def bitrate_kbps(self, now: float) -> float:
        return _rate_kbps(self._bytes, now)

    def audio_bitrate_kbps(self, now: float) -> float:
        return _rate_kbps(self._audio_bytes, now)

    def fps(self) -> float | None:
        if len(self._video_times) < 2:
            return None
        span = self._video_times[-1] - self._video_times[0]
        return round((len(self._video_times) - 1) / span, 2) if span > 0 else None

    def report(self, now: float) -> dict[str, float | None]:
        return {
            "bitrate_kbps": round(self.bitrate_kbps(now)),
            "fps": self.fps(),
            "keyframe_interval_s": self.keyframe_interval,
        }

    def warnings(self) -> list[str]:
        advice = []
        if self.keyframe_interval and self.keyframe_interval > self.segment_target + 0.05:
            advice.append(
                f"Keyframe interval is {self.keyframe_interval:.1f} s, longer than the "
                f"{self.segment_target:g} s segment target: viewers get more latency. In OBS set "
                "Settings → Output → Keyframe Interval to 1 s; with ffmpeg use -g equal to the "
                "frame rate."
            )
        for warning in self.extra_warnings:
            if warning not in advice:
                advice.append(warning)
        return advice


def _rate_kbps(samples: deque[tuple[float, int]], now: float) -> float:
    if not samples:
        return 0.0
    span = max(1.0, now - samples[0][0])
    return sum(size for _, size in samples) * 8 / span / 1000
