"""WebRTC frames of one WHIP session → the Publisher's tracks and packets.

H.264 is repackaged without decoding (Annex B → length-prefixed, SPS/PPS → avcC).
VP8/VP9 are decoded and encoded to H.264, Opus to AAC, on codec threads. Frames
are timed by RTP timestamp and sender report (`MediaSync`), so audio and video
line up however the sender's clocks started. Nothing is pushed until every
offered track has its configuration, so the packager starts with one init
section holding both tracks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

from live.broadcast.publisher import Publisher
from live.ingest.tracks import video_track
from live.ingest.whip.sync import MediaSync
from live.media.avc import AccessUnit, ParameterSets
from live.media.packet import MediaPacket, TrackInfo
from live.transcode.audio import AudioTranscoder
from live.transcode.video import H264Settings, VideoTranscoder
from live.transcode.worker import CodecWorker

log = logging.getLogger(__name__)

VIDEO_RATE = 90000
AUDIO_RATE = 48000
_VIDEO_TB = Fraction(1, VIDEO_RATE)
# How often to ask for a keyframe while waiting for one.
_PLI_INTERVAL_S = 0.5
# Packets held until every track's configuration is known (then dropped, oldest first).
_MAX_HELD = 600


@dataclass
class MediaStats:
    """What a session measured about its own pipeline (the WHIP benchmark reads it)."""

    frames_in: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    packets_out: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    # Seconds from a video frame leaving the depacketiser to its packet reaching the
    # Publisher: the latency this server adds before packaging.
    video_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    dropped: int = 0
    keyframe_requests: int = 0


class WhipMedia:
    """Feeds one Publisher from the frames of one peer connection."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        video_codec: str | None,
        audio_codec: str | None,
        keyframe_interval_s: float = 1.0,
        video_settings: H264Settings | None = None,
    ) -> None:
        self.publisher = publisher
        self.video_codec = video_codec
        self.audio_codec = audio_codec
        self._keyframe_interval_s = keyframe_interval_s
        self.stats = MediaStats()
        rates = {}
        if video_codec:
            rates["video"] = VIDEO_RATE
        if audio_codec:
            rates["audio"] = AUDIO_RATE
        self._sync = MediaSync(rates)
        self._tracks: dict[str, TrackInfo] = {}
        self._held: deque[MediaPacket] = deque()
        self._announced = False
        self._arrivals: dict[int, float] = {}  # video pts → when its frame arrived
        # passthrough state
        self._parameter_sets = ParameterSets()
        self._last_keyframe_at: float | None = None
        self._last_pli_at = 0.0
        # transcoding state
        self._video_worker: CodecWorker | None = None
        self._audio_worker: CodecWorker | None = None
        self._video_needs_keyframe = True
        self._closed = False
        if video_codec and video_codec != "h264":
            transcoder = VideoTranscoder(video_codec, video_settings)
            self._video_worker = CodecWorker(
                f"whip-{video_codec}",
                lambda job: (transcoder.transcode(*job), transcoder.track),
                self._on_transcoded,
                max_pending=30,
            )
        if audio_codec:
            audio = AudioTranscoder(audio_codec)
            self._tracks["audio"] = audio.track
            self._audio_worker = CodecWorker(
                f"whip-{audio_codec}",
                lambda job: (audio.transcode(*job), audio.track),
                self._on_transcoded,
                max_pending=100,
            )

    @property
    def passthrough(self) -> bool:
        return self.video_codec == "h264"

    # -- input, from the FrameTaps (on the loop) ----------------------------------------

    def on_frame(self, kind: str, codec: str, data: bytes, rtp_timestamp: int) -> None:
        if self._closed or not data:
            return
        self.stats.frames_in[kind] = self.stats.frames_in.get(kind, 0) + 1
        arrival = time.perf_counter()
        for ready_kind, seconds, item in self._sync.push(
            kind, rtp_timestamp, (data, arrival), time.time()
        ):
            self._timed(ready_kind, seconds, item)  # type: ignore[arg-type]

    def on_report(self, kind: str, wall: float, rtp_timestamp: int) -> None:
        self._sync.on_report(kind, wall, rtp_timestamp)

    def tick(self) -> bool:
        """Called a few times a second: release frames whose wait for a sender report
        is over. True when the sender should be asked for a keyframe (PLI) now:
        none yet, or (passing H.264 through) none for a segment's length, as WebRTC
        senders only send keyframes on request."""
        for kind, seconds, item in self._sync.poll(time.time()):
            self._timed(kind, seconds, item)  # type: ignore[arg-type]
        if self.video_codec is None or self._closed:
            return False
        now = time.monotonic()
        waiting = (
            self._last_keyframe_at is None if self.passthrough else (self._video_needs_keyframe)
        )
        overdue = (
            self.passthrough
            and self._last_keyframe_at is not None
            and now - self._last_keyframe_at >= self._keyframe_interval_s
        )
        if (waiting or overdue) and now - self._last_pli_at >= _PLI_INTERVAL_S:
            self._last_pli_at = now
            self.stats.keyframe_requests += 1
            return True
        return False

    def _timed(self, kind: str, seconds: float, item: tuple[bytes, float]) -> None:
        data, arrival = item
        if kind == "audio":
            pts = round(seconds * AUDIO_RATE)
            if self._audio_worker is not None and not self._audio_worker.submit((data, pts)):
                self.stats.dropped += 1
            return
        pts = round(seconds * VIDEO_RATE)
        if len(self._arrivals) > 500:
            self._arrivals.clear()
        self._arrivals[pts] = arrival
        if self.passthrough:
            self._passthrough(data, pts)
        else:
            self._transcode_video(data, pts)

    def _passthrough(self, data: bytes, pts: int) -> None:
        unit = AccessUnit(data)
        config = self._parameter_sets.update(unit)
        if config is not None:
            track = video_track("h264", config)
            if track is not None:
                self._tracks["video"] = track
                if self._announced:
                    self.publisher.set_track(track)
        if unit.keyframe:
            self._last_keyframe_at = time.monotonic()
        if "video" not in self._tracks or not unit.sample:
            return  # nothing decodable before the first SPS/PPS and IDR
        self._emit(MediaPacket("video", pts, pts, unit.sample, unit.keyframe, _VIDEO_TB))

    def _transcode_video(self, data: bytes, pts: int) -> None:
        assert self._video_worker is not None
        if self._video_needs_keyframe:
            if not _is_keyframe(self.video_codec or "", data):
                self.stats.dropped += 1
                return
            self._video_needs_keyframe = False
        if not self._video_worker.submit((data, pts)):
            # The encoder is behind: skip to the next keyframe rather than queue up.
            self.stats.dropped += 1
            self._video_needs_keyframe = True

    # -- output --------------------------------------------------------------------------

    def _on_transcoded(self, result: tuple[list[MediaPacket], TrackInfo | None]) -> None:
        packets, track = result
        if self._closed:
            return
        if track is not None and packets:
            kind = packets[0].kind
            if self._tracks.get(kind) != track:
                self._tracks[kind] = track
                if self._announced:
                    self.publisher.set_track(track)
        for packet in packets:
            self._emit(packet)

    def _emit(self, packet: MediaPacket) -> None:
        if not self._announced:
            wanted = [k for k in ("video", "audio") if self._codec(k)]
            if any(k not in self._tracks for k in wanted):
                self._held.append(packet)
                if len(self._held) > _MAX_HELD:
                    self._held.popleft()
                    self.stats.dropped += 1
                return
            self._announced = True
            for track in self._tracks.values():
                self.publisher.set_track(track)
            held, self._held = self._held, deque()
            for earlier in held:
                self._push(earlier)
        self._push(packet)

    def _push(self, packet: MediaPacket) -> None:
        if packet.kind == "video":
            arrival = self._arrivals.pop(packet.pts, None)
            if arrival is not None:
                self.stats.video_latency_s.append(time.perf_counter() - arrival)
        self.stats.packets_out[packet.kind] += 1
        self.publisher.push(packet)

    def _codec(self, kind: str) -> str | None:
        return self.video_codec if kind == "video" else self.audio_codec

    async def close(self) -> None:
        self._closed = True
        for worker in (self._video_worker, self._audio_worker):
            if worker is not None:
                with contextlib.suppress(Exception):
                    await worker.close()

    @property
    def codec_busy_s(self) -> float:
        """Seconds the codec threads have worked (decode + encode)."""
        return sum(w.busy_s for w in (self._video_worker, self._audio_worker) if w is not None)


def _is_keyframe(codec: str, frame: bytes) -> bool:
    """Whether a compressed frame can start decoding (VP8: RFC 6386 9.1, the
    frame tag's first bit is 0 on key frames)."""
    if codec == "vp8":
        return bool(frame) and not frame[0] & 0x01
    return True
