"""CMAF fragmented MP4: PyAV writes the init section, we write the fragments.

The init section (ftyp + moov with each codec's sample entry: avcC, hvcC, esds,
dOps) is codec knowledge that FFmpeg's mp4 muxer has, so PyAV writes it. The
fragments are ours: PyAV's muxer with `frag_every_frame` writes a zero duration
for the last sample of a track whenever a packet of the *other* track triggers the
flush, which leaves audio with collapsed timestamps that hls.js refuses to play
(bufferSeekOverHole), and it can only cut where its interleaver lets it. A
moof+mdat per LL-HLS part with exact per-sample durations is 60 lines of
ISO 14496-12 8.8 and cuts exactly where the packager says.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from fractions import Fraction

import av

from live.media.packet import TrackInfo
from live.media.timeline import TimedSample
from live.packaging.bmff import read_track_defaults

VIDEO_TIMESCALE = 90_000

# PyAV names of the codecs an mp4 sample entry can describe without re-encoding.
_PYAV_CODEC = {"h264": "h264", "hevc": "hevc", "aac": "aac", "opus": "opus", "av1": "av1"}

# Sample flags (ISO 14496-12 8.8.3.1): sync samples depend on nothing; others
# depend on earlier samples and are not sync samples.
_SYNC_SAMPLE = 0x02000000
_NON_SYNC_SAMPLE = 0x01010000
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800


def track_timescale(track: TrackInfo) -> int:
    if track.kind == "audio" and track.sample_rate:
        return track.sample_rate
    return VIDEO_TIMESCALE


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.data += data
        return len(data)


def build_init(tracks: Sequence[TrackInfo]) -> bytes:
    """ftyp + moov (with mvex, no samples) for these tracks, written by PyAV."""
    sink = _Sink()
    container = av.open(
        sink, "w", format="mp4", options={"movflags": "empty_moov+default_base_moof+frag_custom"}
    )
    try:
        for track in tracks:
            _add_stream(container, track)
        container.start_encoding()
        init = bytes(sink.data)
    finally:
        container.close()
    return init


class Fmp4Writer:
    """The init section and the fragments of one fixed set of tracks.

    A changed track configuration needs a new writer (a new init section and an
    EXT-X-DISCONTINUITY); that decision is the packager's.
    """

    def __init__(self, tracks: Sequence[TrackInfo]) -> None:
        if not tracks:
            raise ValueError("a writer needs at least one track")
        self.tracks = tuple(tracks)
        self.init = build_init(self.tracks)
        _, timescales = read_track_defaults(self.init)
        # The muxer numbers tracks in the order the streams were added.
        self.track_ids = {track.kind: index + 1 for index, track in enumerate(self.tracks)}
        self.timescales = {kind: timescales[track_id] for kind, track_id in self.track_ids.items()}
        self._sequence = 0

    def fragment(self, samples: Sequence[TimedSample]) -> bytes:
        """One moof+mdat holding `samples` (in decode order within each track)."""
        by_track: dict[int, list[TimedSample]] = {}
        for sample in samples:
            track_id = self.track_ids.get(sample.packet.kind)
            if track_id is not None:
                by_track.setdefault(track_id, []).append(sample)
        if not by_track:
            return b""
        self._sequence += 1
        ordered = sorted(by_track.items())
        # Two passes: the data offsets in each trun depend on the moof's own size.
        moof = _moof(self._sequence, ordered, [0] * len(ordered))
        offsets, position = [], len(moof) + 8
        for _, track_samples in ordered:
            offsets.append(position)
            position += sum(len(s.packet.data) for s in track_samples)
        moof = _moof(self._sequence, ordered, offsets)
        datas = [s.packet.data for _, track in ordered for s in track]
        payload_size = position - len(moof) - 8  # the moof's size did not change
        mdat = struct.pack(">I4s", 8 + payload_size, b"mdat")
        # One join: joining the samples first, then adding the boxes in front, copied
        # each part twice (parts are 40-120 KB: each copy is a fresh mapping).
        return b"".join([moof, mdat, *datas])


def _box(box_type: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), box_type) + body


def _full_box(box_type: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(box_type, struct.pack(">I", (version << 24) | flags), *parts)


def _moof(sequence: int, tracks: list[tuple[int, list[TimedSample]]], offsets: list[int]) -> bytes:
    trafs = []
    for (track_id, samples), data_offset in zip(tracks, offsets, strict=True):
        entries = b"".join(
            struct.pack(
                ">IIIi",
                sample.duration,
                len(sample.packet.data),
                _SYNC_SAMPLE if sample.packet.keyframe else _NON_SYNC_SAMPLE,
                sample.pts - sample.dts,
            )
            for sample in samples
        )
        trafs.append(
            _box(
                b"traf",
                _full_box(b"tfhd", 0, _TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id)),
                _full_box(b"tfdt", 1, 0, struct.pack(">Q", samples[0].dts)),
                _full_box(
                    b"trun", 1, _TRUN_FLAGS, struct.pack(">Ii", len(samples), data_offset), entries
                ),
            )
        )
    return _box(b"moof", _full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), *trafs)


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
