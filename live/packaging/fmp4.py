"""CMAF fragmented-MP4 muxing of codec-neutral packets with PyAV, without decoding.

PyAV's mp4 muxer writes one moof+mdat per frame with
`frag_every_frame+empty_moov+default_base_moof`; the FragmentReader reads those
back so the packager can group them into LL-HLS parts. Timestamps are given in
each track's own timescale (90 kHz video, the sample rate for audio) so the
fragments carry exact sample durations.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from live.media.packet import MediaPacket, TrackInfo
from live.packaging.bmff import Fragment, FragmentReader

VIDEO_TIMESCALE = 90_000

# PyAV names of the codecs the mp4 muxer can carry without re-encoding.
_PYAV_CODEC = {"h264": "h264", "hevc": "hevc", "aac": "aac", "opus": "opus", "av1": "av1"}


class _Sink(io.RawIOBase):
    """A write-only file object that hands every write to the fragment reader."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def track_timescale(track: TrackInfo) -> int:
    if track.kind == "audio" and track.sample_rate:
        return track.sample_rate
    return VIDEO_TIMESCALE


class Fmp4Muxer:
    """One init section and a stream of per-frame fragments for a fixed set of tracks.

    A change of any track's configuration needs a new Fmp4Muxer (and so a new init
    section and a discontinuity); that decision belongs to the packager.
    """

    def __init__(self, tracks: list[TrackInfo]) -> None:
        if not tracks:
            raise ValueError("a muxer needs at least one track")
        self.tracks = tracks
        self._sink = _Sink()
        self._reader = FragmentReader()
        self._container = av.open(
            self._sink,
            "w",
            format="mp4",
            options={
                "movflags": "frag_every_frame+empty_moov+default_base_moof+negative_cts_offsets",
                # Interleave only as far as the next packet of each track: no
                # multi-second buffering when one track is sparse.
                "max_interleave_delta": "200000",
            },
        )
        self._streams: dict[str, av.stream.Stream] = {}
        self._track_ids: dict[str, int] = {}
        for index, track in enumerate(tracks):
            self._streams[track.kind] = _add_stream(self._container, track)
            self._track_ids[track.kind] = index + 1
        self._timescales = {t.kind: track_timescale(t) for t in tracks}
        self.init = b""
        self._started = False

    def track_id(self, kind: str) -> int | None:
        return self._track_ids.get(kind)

    def timescale(self, kind: str) -> int:
        return self._timescales[kind]

    def mux(self, packet: MediaPacket, duration: int) -> list[Fragment]:
        """Mux one packet whose timestamps are in its track's timescale."""
        stream = self._streams.get(packet.kind)
        if stream is None:
            return []
        av_packet = av.Packet(packet.data)
        av_packet.stream = stream
        av_packet.time_base = Fraction(1, self._timescales[packet.kind])
        av_packet.dts = packet.dts
        av_packet.pts = packet.pts
        av_packet.duration = duration
        av_packet.is_keyframe = packet.keyframe
        self._container.mux_one(av_packet)
        return self._collect()

    def close(self) -> list[Fragment]:
        """Flush what the muxer still holds (the last frames of a session)."""
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass
        return self._collect()

    def _collect(self) -> list[Fragment]:
        data = self._sink.take()
        if not data:
            return []
        fragments = self._reader.feed(data)
        if not self.init and self._reader.init:
            self.init = self._reader.init
        return fragments


_templates = av.open(io.BytesIO(), "w", format="mp4")
_template_streams: dict[str, av.stream.Stream] = {}


def _add_stream(container, track: TrackInfo):
    """An output stream carrying `track.extradata` whose codec is never opened.

    PyAV's add_mux_stream cannot take extradata, so the stream is made from a
    template: template-initialised codec contexts are not opened at write_header,
    and the muxer reads extradata, dimensions and sample rate from them.
    """
    name = _PYAV_CODEC.get(track.codec)
    if name is None:
        raise ValueError(f"codec {track.codec!r} cannot be packaged as CMAF")
    template = _template_streams.get(name)
    if template is None:
        template = _templates.add_stream(name)
        _template_streams[name] = template
    stream = container.add_stream_from_template(template, opaque=True)
    context = stream.codec_context
    if track.extradata:
        context.extradata = track.extradata
    if track.kind == "video":
        context.width = track.width
        context.height = track.height
        if track.codec == "hevc":
            context.codec_tag = "hvc1"
    else:
        context.sample_rate = track.sample_rate
        if track.channels:
            context.layout = {1: "mono", 2: "stereo"}.get(track.channels, f"{track.channels}c")
    stream.time_base = Fraction(1, track_timescale(track))
    return stream
