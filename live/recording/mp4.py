"""The downloadable MP4 and the poster of a recording, with PyAV. Blocking.

The stored CMAF is read back run by run (a run is the segments that share an init
section) and remuxed into one fast-start MP4. A track whose configuration never
changes is copied packet for packet; an MP4 track has one configuration, so a
track whose configuration changed during the session (a new resolution, another
codec) is re-encoded to the first configuration, and only that track.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from live.media.packet import TrackInfo
from live.recording import layout
from live.recording.manifest import RecordingIndex, SegmentEntry
from live.thumbnails.jpeg import encode_jpeg

log = logging.getLogger(__name__)

_HEAD_PACKETS = 64  # read this far into the first run to find where media starts

# Reads a whole stored object, blocking (the MP4 is built in a worker thread).
ReadObject = Callable[[str], bytes]


class StoredFile(io.RawIOBase):
    """Several stored objects read as one seekable file (init + segments), one
    object held in memory at a time."""

    def __init__(self, read: ReadObject, keys: list[str], sizes: list[int]) -> None:
        self._read = read
        self._keys = keys
        self._sizes = sizes
        self._starts = [sum(self._sizes[:i]) for i in range(len(keys))]
        self._length = sum(self._sizes)
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def _object(self, number: int) -> bytes:
        if self._cached is None or self._cached[0] != number:
            self._cached = (number, self._read(self._keys[number]))
        return self._cached[1]

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._position >= self._length:
            return 0
        number = max(i for i, start in enumerate(self._starts) if start <= self._position)
        data = self._object(number)
        offset = self._position - self._starts[number]
        chunk = data[offset : offset + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


def _runs(index: RecordingIndex) -> list[tuple[int, list[SegmentEntry]]]:
    runs: list[tuple[int, list[SegmentEntry]]] = []
    for segment in index.segments:
        if runs and runs[-1][0] == segment.init:
            runs[-1][1].append(segment)
        else:
            runs.append((segment.init, [segment]))
    return runs


class _Output:
    """One output track: copied, or re-encoded to the first configuration."""

    def __init__(self, container, kind: str, target: TrackInfo, copy: bool, template) -> None:
        self.kind = kind
        self.copy = copy
        self.target = target
        if copy:
            self.stream = container.add_stream_from_template(template)
        elif kind == "video":
            rate = template.average_rate or template.guessed_rate or Fraction(30)
            self.stream = container.add_stream("libx264", rate=rate)
            self.stream.width, self.stream.height = target.width, target.height
            self.stream.pix_fmt = "yuv420p"
            self.stream.time_base = template.time_base
            self.stream.codec_context.time_base = template.time_base
            self.stream.options = {"preset": "veryfast", "crf": "20"}
        else:
            self.stream = container.add_stream("aac", rate=target.sample_rate or 48000)
            layout = {1: "mono", 2: "stereo"}.get(target.channels or 2, "stereo")
            self.stream.layout = layout
            self.resampler = av.AudioResampler(
                format="fltp", layout=layout, rate=self.stream.rate, frame_size=1024
            )
            self.next_pts: int | None = None

    def encode_video(self, frame: av.VideoFrame) -> Iterator[av.Packet]:
        if (
            frame.width != self.target.width
            or frame.height != self.target.height
            or (frame.format.name != "yuv420p")
        ):
            pts, time_base = frame.pts, frame.time_base
            frame = frame.reformat(self.target.width, self.target.height, "yuv420p")
            frame.pts, frame.time_base = pts, time_base
        if frame.time_base != self.stream.codec_context.time_base and frame.pts is not None:
            frame.pts = round(frame.pts * frame.time_base / self.stream.codec_context.time_base)
            frame.time_base = self.stream.codec_context.time_base
        yield from self.stream.encode(frame)

    def encode_audio(self, frame: av.AudioFrame | None, start: float | None) -> Iterator[av.Packet]:
        rate = self.stream.rate
        if start is not None:  # a new run: never go back, keep the gap between runs
            at = round(start * rate)
            self.next_pts = at if self.next_pts is None else max(self.next_pts, at)
        for out in self.resampler.resample(frame):
            out.pts = self.next_pts or 0
            out.time_base = Fraction(1, rate)
            self.next_pts = out.pts + out.samples
            yield from self.stream.encode(out)

    def flush(self) -> Iterator[av.Packet]:
        if self.copy:
            return
        if self.kind == "audio":
            yield from self.encode_audio(None, None)
        yield from self.stream.encode(None)


def build_mp4(read: ReadObject, prefix: str, index: RecordingIndex, path: Path) -> None:
    runs = _runs(index)
    targets: dict[str, TrackInfo] = {}
    for init, _ in runs:
        for track in index.inits[init]:
            targets.setdefault(track.kind, track)
    copy = {
        kind: all(
            next((t for t in index.inits[init] if t.kind == kind), target) == target
            for init, _ in runs
        )
        for kind, target in targets.items()
    }
    for kind, same in copy.items():
        if not same:
            log.info("%s: the %s configuration changed; re-encoding that track", prefix, kind)

    output = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    outputs: dict[str, _Output] = {}
    origin: float | None = None
    try:
        for init, segments in runs:
            keys = [prefix + layout.init_key(init)]
            keys += [prefix + layout.segment_key(s.number) for s in segments]
            sizes = [len(read(keys[0]))] + [s.size for s in segments]
            with av.open(StoredFile(read, keys, sizes), "r", format="mp4") as source:
                streams = {s.type: s for s in source.streams if s.type in targets}
                for kind, stream in streams.items():
                    if kind not in outputs:
                        outputs[kind] = _Output(output, kind, targets[kind], copy[kind], stream)
                packets = source.demux(list(streams.values()))
                if origin is None:
                    head = _take(packets, _HEAD_PACKETS)
                    times = [float(p.dts * p.time_base) for p in head if p.dts is not None]
                    origin = min(times, default=0.0)
                    packets = _chain(head, packets)
                starts: set[str] = set()
                for packet in packets:
                    _write(output, outputs, packet, origin, starts)
                for kind, stream in streams.items():
                    out = outputs[kind]
                    if not out.copy:
                        for frame in stream.codec_context.decode(None):
                            _encode_frame(output, out, frame, origin, starts)
        for out in outputs.values():
            for packet in out.flush():
                output.mux(packet)
    finally:
        output.close()


def _take(packets: Iterator[av.Packet], count: int) -> list[av.Packet]:
    head = []
    for packet in packets:
        head.append(packet)
        if len(head) >= count:
            break
    return head


def _chain(head: list[av.Packet], rest: Iterator[av.Packet]) -> Iterator[av.Packet]:
    yield from head
    yield from rest


def _write(output, outputs: dict[str, _Output], packet: av.Packet, origin: float,
           starts: set[str]) -> None:  # fmt: skip
    if packet.dts is None or packet.size == 0:
        return  # the demuxer's end-of-stream marker
    out = outputs[packet.stream.type]
    if out.copy:
        shift = round(origin / packet.time_base)
        packet.dts -= shift
        if packet.pts is not None:
            packet.pts -= shift
        packet.stream = out.stream
        output.mux(packet)
        return
    for frame in packet.decode():
        _encode_frame(output, out, frame, origin, starts)


def _encode_frame(output, out: _Output, frame, origin: float, starts: set[str]) -> None:
    if frame.pts is None:
        return
    seconds = float(frame.pts * frame.time_base) - origin
    if out.kind == "video":
        frame.pts = round(seconds / frame.time_base)
        packets = out.encode_video(frame)
    else:
        start = None
        if out.kind not in starts:
            starts.add(out.kind)
            start = seconds
        packets = out.encode_audio(frame, start)
    for packet in packets:
        output.mux(packet)


def make_poster(mp4: Path, position: float) -> bytes | None:
    """A JPEG of the keyframe at or before `position` of the duration; None
    without video."""
    with av.open(str(mp4)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        duration = container.duration or 0  # microseconds
        if duration > 0:
            container.seek(int(duration * position), backward=True, any_frame=False)
        frame = next(container.decode(stream), None)
        if frame is None:
            return None
    return encode_jpeg(frame, quality=3)
