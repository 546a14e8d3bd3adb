"""MPEG-TS bytes → TrackInfo and MediaPacket, for ingests that carry TS (SRT).

PyAV's MPEG-TS demuxer (no decoding) runs in a thread of its own, reading from a
bounded, queue-fed file object: the event loop only appends bytes, and if the
demuxer stalls the buffer fills up and further bytes are dropped (and counted)
rather than held without limit. What it demuxes goes through `TsToMedia`, which
turns Annex B video and ADTS audio into the MP4 forms the rest of the server uses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import BinaryIO, Final

import av
from av.container import InputContainer

from live.ingest.tracks import audio_track, video_track
from live.ingest.ts_guard import TsGuard
from live.media import adts, annexb
from live.media.codecs import CodecConfigError
from live.media.packet import MediaPacket, TrackInfo

log = logging.getLogger(__name__)

TS_TIME_BASE: Final = Fraction(1, 90000)
_PTS_WRAP: Final = 1 << 33
# Enough to find the streams of a live TS without waiting seconds for it.
_PROBE_OPTIONS: Final = {"probesize": "65536", "analyzeduration": "200000"}
DEFAULT_BUFFER_BYTES: Final = 16 * 1024 * 1024  # ~6 s at 20 Mbps

MediaItem = TrackInfo | MediaPacket


SUPPORTED_CODECS: Final = frozenset({"h264", "hevc", "aac"})
# How long (media time) and how many packets may wait at the start for every
# track's configuration: a track that shows none by then is not waited for.
_MAX_HOLD_S: Final = 1.0
_MAX_HELD: Final = 600


class TsToMedia:
    """Converts demuxed TS packets, keeping the parameter sets seen so far.

    A TS announces its streams (PMT) before their configurations show up in band:
    the first video frame may come before the first ADTS header. Packets are held
    back at the start until every `expected` kind has a track (or a second of media
    is waiting), so the stream starts with all its tracks at once instead of
    starting video-only and changing its init section a moment later. Video frames
    before the first parameter sets (SPS/PPS) cannot be decoded and are skipped: a
    sender that lost them (GStreamer's `mpegtsmux ! srtsink` without `alignment=7`
    drops every buffer over one SRT payload, keyframes included) starts with its
    audio at once instead of after seconds of waiting, and its video joins at the
    first keyframe that brings them.
    """

    def __init__(self, expected: set[str] | frozenset[str] = frozenset()) -> None:
        self._expected = set(expected)
        self._held: list[MediaItem] | None = [] if expected else None
        self._parameter_sets: dict[int, bytes] = {}
        self._tracks: dict[str, TrackInfo] = {}
        self._offset = 0
        self._last_dts: int | None = None
        self.skipped_codecs: set[str] = set()
        self._video_broken = False
        self._audio_clock: list[int] | None = None  # [PTS of a PES, frames since it]
        self.corrupt_packets = 0  # arrived damaged (a TS packet of them went missing)
        self.skipped_frames = 0  # intact, but referring to a damaged frame
        self.late_stream_packets = 0  # of streams that appeared after the start

    def convert(
        self, codec: str, pts: int | None, dts: int | None, data: bytes, corrupt: bool = False
    ) -> list[MediaItem]:
        """One demuxed packet → tracks and packets.

        A `corrupt` packet (the demuxer saw a continuity gap inside it: the transport
        lost a TS packet) is never passed on: a decoder fed a frame with a hole gives
        garbage until the next keyframe. Video then waits for that keyframe, since
        the frames between refer to the damaged one; audio frames stand alone.
        """
        if corrupt:
            self.corrupt_packets += 1
            if self.corrupt_packets % 100 == 1:  # the first, then every 100th
                log.warning(
                    "damaged %s packet (pts %s, %d so far): a TS packet of it was lost",
                    codec, pts, self.corrupt_packets,
                )  # fmt: skip
            if codec in ("h264", "hevc"):
                self._video_broken = True
            elif codec == "aac" and self._audio_clock is not None:
                self._audio_clock[1] += 1  # its slot in time stays taken
            return []
        if pts is not None:
            dts = pts if dts is None else dts
            dts, pts = self._unwrap(dts, pts)
        try:
            if codec == "aac":
                return self._release(self._audio(pts, data))
            if pts is None or dts is None:
                return []
            if codec in ("h264", "hevc"):
                return self._release(self._video(codec, pts, dts, data))
        except (CodecConfigError, adts.AdtsError) as error:
            log.warning("dropping an unreadable %s packet: %s", codec, error)
            return []
        if codec not in self.skipped_codecs:
            self.skipped_codecs.add(codec)
            log.warning("MPEG-TS stream with codec %s is not supported; skipping it", codec)
        return []

    def _release(self, items: list[MediaItem]) -> list[MediaItem]:
        held = self._held
        if held is None:
            return items
        held += items
        if not self._expected <= self._tracks.keys() and not self._held_long_enough(held):
            return []
        self._held = None
        missing = self._expected - self._tracks.keys()
        if missing:
            log.warning(
                "MPEG-TS stream: no %s configuration after %.1f s; starting without it "
                "(a sender that drops large buffers loses keyframes: GStreamer needs "
                "alignment=7 on mpegtsmux before srtsink)",
                "/".join(sorted(missing)), _MAX_HOLD_S,
            )  # fmt: skip
        packets = [i for i in held if isinstance(i, MediaPacket)]
        return [*self._tracks.values(), *packets]

    @staticmethod
    def _held_long_enough(held: list[MediaItem]) -> bool:
        if len(held) >= _MAX_HELD:
            return True
        times = [i.dts for i in held if isinstance(i, MediaPacket)]
        return bool(times) and (max(times) - min(times)) * TS_TIME_BASE >= _MAX_HOLD_S

    def _unwrap(self, dts: int, pts: int) -> tuple[int, int]:
        """Keep timestamps monotonic across the 33-bit wrap (every 26.5 h)."""
        dts += self._offset
        pts += self._offset
        if self._last_dts is not None and dts < self._last_dts - _PTS_WRAP // 2:
            self._offset += _PTS_WRAP
            dts += _PTS_WRAP
            pts += _PTS_WRAP
        self._last_dts = dts if self._last_dts is None else max(self._last_dts, dts)
        return dts, pts

    def _video(self, codec: str, pts: int, dts: int, data: bytes) -> list[MediaItem]:
        units = annexb.split_nal_units(data)
        out: list[MediaItem] = []
        if codec == "h264":
            for unit in units:
                kind = annexb.h264_type(unit)
                if kind in (annexb.H264_SPS, annexb.H264_PPS):
                    self._parameter_sets[kind] = unit
            sps = self._parameter_sets.get(annexb.H264_SPS)
            pps = self._parameter_sets.get(annexb.H264_PPS)
            if sps and pps:
                self._set_track(out, video_track("h264", annexb.avcc_from_parameter_sets(sps, pps)))
            sample, keyframe = annexb.h264_sample(units)
        else:
            for unit in units:
                kind = annexb.hevc_type(unit)
                if kind in (annexb.HEVC_VPS, annexb.HEVC_SPS, annexb.HEVC_PPS):
                    self._parameter_sets[kind] = unit
            vps, sps, pps = (self._parameter_sets.get(k, b"") for k in (32, 33, 34))
            if vps and sps and pps:
                hvcc = annexb.hvcc_from_parameter_sets(vps, sps, pps)
                self._set_track(out, video_track("hevc", hvcc))
            sample, keyframe = annexb.hevc_sample(units)
        if "video" not in self._tracks:  # no parameter sets yet: undecodable
            self.skipped_frames += 1
            return out
        if self._video_broken:
            if not keyframe:
                self.skipped_frames += 1
                return out
            self._video_broken = False
        if sample:
            out.append(MediaPacket("video", dts, pts, sample, keyframe, TS_TIME_BASE))
        return out

    def _audio(self, pts: int | None, data: bytes) -> list[MediaItem]:
        """ADTS frames, timed from the PES's PTS. FFmpeg's parser splits a PES of
        several frames into one packet each, and only the first has a PTS: the
        others are timed by counting frames on from it."""
        if pts is not None:
            self._audio_clock = [pts, 0]
        clock = self._audio_clock
        if clock is None:
            return []  # no PTS seen yet: nothing to time this by
        out: list[MediaItem] = []
        for frame in adts.parse_adts(data):
            self._set_track(out, audio_track("aac", frame.audio_specific_config))
            at = clock[0] + clock[1] * adts.SAMPLES_PER_FRAME * 90000 // frame.sample_rate
            clock[1] += 1
            out.append(MediaPacket("audio", at, at, frame.payload, True, TS_TIME_BASE))
        return out

    def _set_track(self, out: list[MediaItem], track: TrackInfo | None) -> None:
        if track is not None and self._tracks.get(track.kind) != track:
            self._tracks[track.kind] = track
            out.append(track)


# What PyAV raises on a stream it cannot read: the end of that stream, not a bug.
DEMUX_ERRORS: Final = (av.FFmpegError, OSError)


def open_ts(source: BinaryIO) -> InputContainer:
    """PyAV's MPEG-TS demuxer over a file object, probing only briefly (live input)."""
    return av.open(source, mode="r", format="mpegts", options=_PROBE_OPTIONS)


def converter_for(container: InputContainer) -> TsToMedia:
    """A converter waiting for every supported track the PMT announced."""
    return TsToMedia(
        {
            s.type
            for s in container.streams
            if s.type in ("video", "audio")
            and s.codec_context is not None
            and s.codec_context.name in SUPPORTED_CODECS
        }
    )


def demux_items(container: InputContainer, converter: TsToMedia) -> Iterator[list[MediaItem]]:
    """The tracks and packets of each demuxed packet, as `converter` turns them out.

    Raises one of `DEMUX_ERRORS` when the stream cannot be read on."""
    while True:
        try:
            for packet in container.demux():
                items = _convert(packet, converter)
                if items:
                    yield items
            return
        except IndexError:
            # A stream that appeared after the start (a new PID in a PMT update):
            # PyAV fails to look it up. Its packet is dropped (it is no track of
            # ours) and demuxing goes on with a fresh generator.
            converter.late_stream_packets += 1


def _convert(packet: av.Packet, converter: TsToMedia) -> list[MediaItem]:
    context = packet.stream.codec_context
    # A stream FFmpeg cannot name (a data PID, a PES stream id it does not know)
    # has no codec context: it is no media of ours, and no reason to stop.
    if packet.size == 0 or context is None:
        return []
    return converter.convert(context.name, packet.pts, packet.dts, bytes(packet), packet.is_corrupt)


class BoundedByteQueue:
    """A file object for PyAV: `read` blocks until bytes arrive or `close` is called.

    `feed` never blocks and refuses bytes beyond `limit` (returns False).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._closed = False
        self._condition = threading.Condition()

    def feed(self, data: bytes) -> bool:
        with self._condition:
            if self._closed or self._size + len(data) > self.limit:
                return False
            self._chunks.append(data)
            self._size += len(data)
            self._condition.notify()
        return True

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self._condition:
            while not self._chunks and not self._closed:
                self._condition.wait()
            if size < 0:
                size = self._size
            parts: list[bytes] = []
            taken = 0
            chunks = self._chunks
            while chunks and taken < size:
                chunk = chunks[0]
                if taken + len(chunk) <= size:
                    parts.append(chunks.popleft())
                    taken += len(chunk)
                else:
                    cut = size - taken
                    parts.append(chunk[:cut])
                    chunks[0] = chunk[cut:]
                    taken = size
            self._size -= taken
            return b"".join(parts)

    @property
    def buffered(self) -> int:
        return self._size


class TsDemuxer:
    """Demuxes one TS stream in a thread; results come back on the event loop.

    `on_items(list)` gets TrackInfo/MediaPacket lists; `on_done(error)` is called
    once at the end (error is None at a clean end of stream).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_items: Callable[[list[MediaItem]], None],
        on_done: Callable[[str | None], None],
        *,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        name: str = "ts-demux",
    ) -> None:
        self._loop = loop
        self._on_items = on_items
        self._on_done = on_done
        self._queue = BoundedByteQueue(buffer_bytes)
        self._guard = TsGuard()
        self.refused: str | None = None  # why the input was cut off, if it was
        self.dropped_bytes = 0
        self._converter: TsToMedia | None = None  # made once PyAV has found the streams
        self.done = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def corrupt_packets(self) -> int:
        return self._converter.corrupt_packets if self._converter else 0

    @property
    def skipped_frames(self) -> int:
        return self._converter.skipped_frames if self._converter else 0

    @property
    def late_stream_packets(self) -> int:
        return self._converter.late_stream_packets if self._converter else 0

    def feed(self, data: bytes) -> None:
        if self.refused:
            return
        data, self.refused = self._guard.feed(data)
        if self.refused:
            log.warning("stopping the TS demuxer: %s", self.refused)
            self._queue.feed(data)
            self._queue.close()  # what came before is demuxed; then it ends
            return
        if data and not self._queue.feed(data):
            if self.dropped_bytes == 0:
                log.warning("TS demuxer is behind: dropping input")
            self.dropped_bytes += len(data)

    def close(self) -> None:
        """End of input: the thread drains what is buffered, then ends."""
        self._queue.close()

    def _run(self) -> None:
        error: str | None = None
        try:
            container = open_ts(self._queue)
            try:
                converter = self._converter = converter_for(container)
                for items in demux_items(container, converter):
                    self._loop.call_soon_threadsafe(self._on_items, items)
            finally:
                container.close()
        except DEMUX_ERRORS as exc:
            error = str(exc)
        except Exception as exc:  # a bug here must still end the session cleanly
            log.exception("TS demuxer failed")
            error = repr(exc)
        finally:
            error = self.refused or error  # the input was cut off: that is why it ended
            self._queue.close()
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                self._loop.call_soon_threadsafe(self._finish, error)

    def _finish(self, error: str | None) -> None:
        self.done.set()
        self._on_done(error)
