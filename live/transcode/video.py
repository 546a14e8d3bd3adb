"""Video: decode anything PyAV reads, encode H.264 that LL-HLS segments can start on.

The encoder is libx264 tuned for live (`zerolatency`: no B-frames, no lookahead,
so a frame comes out as soon as it goes in; `veryfast`), with an IDR forced by
time rather than by frame count, because WebRTC frame rates vary with the
sender's CPU and network. Its output is already in MP4 form: length-prefixed
samples and an avcC TrackInfo that changes only when the SPS/PPS do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import av
from av.video.frame import PictureType, VideoFrame

from live.media.avc import AccessUnit, ParameterSets
from live.media.codecs import CodecConfigError, avc_codec_string, avc_dimensions
from live.media.packet import MediaPacket, TrackInfo

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90000)
# Decoders PyAV has for what WebRTC and the other ingests carry.
DECODERS = {"h264": "h264", "vp8": "vp8", "vp9": "vp9", "hevc": "hevc", "av1": "libdav1d"}


@dataclass(frozen=True, slots=True)
class H264Settings:
    preset: str = "veryfast"
    tune: str = "zerolatency"
    keyframe_interval_s: float = 1.0
    # None: about 0.1 bit per pixel at `frame_rate`, which looks fine for live at 720p.
    bitrate: int | None = None
    frame_rate: int = 30
    threads: int = 2


def default_bitrate(width: int, height: int, frame_rate: int) -> int:
    return max(200_000, min(8_000_000, int(width * height * frame_rate * 0.1)))


class VideoDecoder:
    """Compressed frames in, `VideoFrame`s out; a broken frame costs that frame only."""

    def __init__(self, codec: str, *, extradata: bytes = b"") -> None:
        """`extradata`: an avcC/hvcC when the frames are length-prefixed (MP4 form);
        none for Annex B or VP8/VP9."""
        if codec not in DECODERS:
            raise ValueError(f"no video decoder for {codec}")
        self.codec = codec
        self._context = av.CodecContext.create(DECODERS[codec], "r")
        if extradata:
            self._context.extradata = extradata
        self._context.thread_type = "SLICE"  # frame threads would add a frame of delay each
        self.errors = 0

    def decode(self, data: bytes, pts: int) -> list[VideoFrame]:
        """`pts` in 1/90000 s; the frames carry it through."""
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = VIDEO_TIME_BASE
        try:
            frames = self._context.decode(packet)
        except av.FFmpegError as error:
            self.errors += 1
            log.debug("%s decode error: %s", self.codec, error)
            return []
        for frame in frames:
            frame.pts = pts if frame.pts is None else frame.pts
            frame.time_base = VIDEO_TIME_BASE
        return list(frames)

    def flush(self) -> list[VideoFrame]:
        """The frames still inside the decoder (B-frame reordering), at the end."""
        try:
            frames = self._context.decode(None)
        except av.FFmpegError:
            return []
        for frame in frames:
            frame.time_base = VIDEO_TIME_BASE
        return list(frames)


class H264Encoder:
    """`VideoFrame`s (pts in 1/90000 s) → H.264 MediaPackets at a fixed size."""

    def __init__(self, width: int, height: int, settings: H264Settings | None = None) -> None:
        self.settings = settings or H264Settings()
        self.width = max(2, width - width % 2)
        self.height = max(2, height - height % 2)
        bitrate = self.settings.bitrate or default_bitrate(
            self.width, self.height, self.settings.frame_rate
        )
        context = av.CodecContext.create("libx264", "w")
        context.width, context.height, context.pix_fmt = self.width, self.height, "yuv420p"
        context.time_base = VIDEO_TIME_BASE
        context.framerate = Fraction(self.settings.frame_rate)
        context.bit_rate = bitrate
        # A safety net only: IDRs are forced by time in `encode`.
        context.gop_size = max(1, round(10 * self.settings.frame_rate))
        context.thread_count = self.settings.threads
        context.options = {
            "preset": self.settings.preset,
            "tune": self.settings.tune,
            "forced-idr": "1",
            "sc_threshold": "0",
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
        }
        context.open()
        self._context = context
        self._parameter_sets = ParameterSets()
        self._last_pts: int | None = None
        self._last_keyframe_pts: int | None = None
        self._interval = round(self.settings.keyframe_interval_s / VIDEO_TIME_BASE)
        self.track: TrackInfo | None = None
        self.frames_in = 0

    def encode(self, frame: VideoFrame, *, keyframe: bool | None = None) -> list[MediaPacket]:
        """`keyframe`: force (True) or forbid (False) an IDR here, as a ladder does to
        follow its source; None puts one every `keyframe_interval_s`."""
        pts = frame.pts if frame.pts is not None else (self._last_pts or 0) + 3000
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # x264 refuses equal or backward timestamps
        self._last_pts = pts
        if (frame.width, frame.height, frame.format.name) != (self.width, self.height, "yuv420p"):
            frame = frame.reformat(self.width, self.height, "yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        due = self._last_keyframe_pts is None or pts - self._last_keyframe_pts >= self._interval
        if keyframe if keyframe is not None else due:
            frame.pict_type = PictureType.I
            self._last_keyframe_pts = pts
        else:
            frame.pict_type = PictureType.NONE
        self.frames_in += 1
        return self._packets(self._context.encode(frame))

    def flush(self) -> list[MediaPacket]:
        return self._packets(self._context.encode(None))

    def _packets(self, packets) -> list[MediaPacket]:
        out = []
        for packet in packets:
            unit = AccessUnit(bytes(packet))
            config = self._parameter_sets.update(unit)
            if config is not None:
                self.track = _h264_track(config)
            if not unit.sample or packet.pts is None:
                continue
            dts = packet.dts if packet.dts is not None else packet.pts
            out.append(
                MediaPacket("video", dts, packet.pts, unit.sample, unit.keyframe, VIDEO_TIME_BASE)
            )
        return out


def _h264_track(avcc: bytes) -> TrackInfo:
    try:
        width, height = avc_dimensions(avcc)
    except CodecConfigError:
        width = height = 0
    return TrackInfo("video", "h264", avcc, width, height, codec_string=avc_codec_string(avcc))


class VideoTranscoder:
    """Compressed video of any decodable codec → H.264 at the first frame's size.

    Later frames of another size (WebRTC senders scale down under load) are scaled
    back, so viewers keep one rendition and one init section.
    """

    def __init__(self, codec: str, settings: H264Settings | None = None) -> None:
        self.decoder = VideoDecoder(codec)
        self.settings = settings or H264Settings()
        self.encoder: H264Encoder | None = None

    @property
    def track(self) -> TrackInfo | None:
        return self.encoder.track if self.encoder is not None else None

    def transcode(self, data: bytes, pts: int) -> list[MediaPacket]:
        out: list[MediaPacket] = []
        for frame in self.decoder.decode(data, pts):
            if self.encoder is None:
                self.encoder = H264Encoder(frame.width, frame.height, self.settings)
            out += self.encoder.encode(frame)
        return out

    def flush(self) -> list[MediaPacket]:
        return self.encoder.flush() if self.encoder is not None else []
