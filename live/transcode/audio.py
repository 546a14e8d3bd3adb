"""Audio: decode (Opus from WebRTC, or anything PyAV reads) and encode AAC-LC.

AAC takes frames of exactly 1024 samples and Opus gives 960 (20 ms), so samples
go through a FIFO. Output timestamps count samples from the input's timestamps,
and are re-anchored when the input jumps (lost packets, a paused sender), so audio
stays where the input put it relative to video instead of drifting.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av
from av.audio.fifo import AudioFifo
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from live.media.codecs import parse_audio_specific_config
from live.media.packet import MediaPacket, TrackInfo

log = logging.getLogger(__name__)

AAC_FRAME = 1024
DECODERS = {
    "opus": "libopus",
    "aac": "aac",
    "mp3": "mp3",
    "pcm_mulaw": "pcm_mulaw",
    "pcm_alaw": "pcm_alaw",
    "g722": "g722",
}


class AudioDecoder:
    def __init__(self, codec: str, sample_rate: int = 48000, channels: int = 2) -> None:
        if codec not in DECODERS:
            raise ValueError(f"no audio decoder for {codec}")
        self.codec = codec
        self.time_base = Fraction(1, sample_rate)
        context = av.CodecContext.create(DECODERS[codec], "r")
        context.sample_rate = sample_rate
        context.layout = "stereo" if channels == 2 else "mono"
        self._context = context
        self.errors = 0

    def decode(self, data: bytes, pts: int) -> list[AudioFrame]:
        """`pts` in 1/sample_rate; the frames carry it through."""
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self.time_base
        try:
            frames = list(self._context.decode(packet))
        except av.FFmpegError as error:
            self.errors += 1
            log.debug("%s decode error: %s", self.codec, error)
            return []
        for frame in frames:
            if frame.pts is None:
                frame.pts = pts
        return frames


class AacEncoder:
    """`AudioFrame`s (pts in 1/sample_rate of the input) → AAC-LC MediaPackets."""

    def __init__(self, sample_rate: int = 48000, channels: int = 2, bitrate: int = 128_000):
        self.sample_rate = sample_rate
        self.time_base = Fraction(1, sample_rate)
        layout = "stereo" if channels == 2 else "mono"
        context = av.CodecContext.create("aac", "w")
        context.sample_rate = sample_rate
        context.layout = layout
        context.format = "fltp"
        context.bit_rate = bitrate
        context.time_base = self.time_base
        context.open()
        self._context = context
        self._resampler = AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        self._fifo = AudioFifo()
        self._next_pts: int | None = None  # pts of the next sample the FIFO hands out
        self._expected_in: int | None = None  # pts the next input frame should have
        asc = bytes(context.extradata or b"")[:2]
        info = parse_audio_specific_config(asc)
        self.track = TrackInfo(
            "audio",
            "aac",
            asc,
            sample_rate=info.sample_rate,
            channels=info.channels,
            codec_string=info.codec_string,
        )

    def encode(self, frame: AudioFrame) -> list[MediaPacket]:
        pts = frame.pts
        if frame.sample_rate != self.sample_rate and pts is not None:
            pts = round(pts * self.sample_rate / frame.sample_rate)
        out: list[MediaPacket] = []
        for converted in self._resampler.resample(frame):
            samples = converted.samples
            if pts is not None and (
                self._expected_in is None or abs(pts - self._expected_in) > AAC_FRAME
            ):
                self._fifo = AudioFifo()  # a jump in the input: restart the count there
                self._next_pts = pts
            elif self._next_pts is None:
                self._next_pts = 0
            self._expected_in = (pts if pts is not None else self._expected_in or 0) + samples
            pts = None  # a second resampled frame follows the first
            converted.pts = None
            self._fifo.write(converted)
            while self._fifo.samples >= AAC_FRAME:
                chunk = self._fifo.read(AAC_FRAME)
                chunk.pts = self._next_pts
                chunk.time_base = self.time_base
                self._next_pts += AAC_FRAME
                out += self._packets(self._context.encode(chunk))
        return out

    def flush(self) -> list[MediaPacket]:
        return self._packets(self._context.encode(None))

    def _packets(self, packets) -> list[MediaPacket]:
        out = []
        for packet in packets:
            if packet.pts is None:
                continue
            data = bytes(packet)
            if data:
                dts = packet.dts if packet.dts is not None else packet.pts
                out.append(MediaPacket("audio", dts, packet.pts, data, True, self.time_base))
        return out


class AudioTranscoder:
    """Compressed audio (Opus, say) → AAC-LC, 48 kHz stereo by default."""

    def __init__(
        self, codec: str, sample_rate: int = 48000, channels: int = 2, bitrate: int = 128_000
    ) -> None:
        self.decoder = AudioDecoder(codec, sample_rate, channels)
        self.encoder = AacEncoder(sample_rate, channels, bitrate)

    @property
    def track(self) -> TrackInfo:
        return self.encoder.track

    def transcode(self, data: bytes, pts: int) -> list[MediaPacket]:
        out: list[MediaPacket] = []
        for frame in self.decoder.decode(data, pts):
            out += self.encoder.encode(frame)
        return out

    def flush(self) -> list[MediaPacket]:
        return self.encoder.flush()
