"""The loop side of a ladder: rung windows that mirror the source rendition.

The source packager reports each segment start and part; they go, in order, to a
worker thread (`LadderEncoder`), whose results come back here and become fragments
in the rung windows. Rung windows take the source window's timing and numbering,
so every rendition has the same media sequence numbers and part indexes.

When the codecs fall behind, rungs are shed, most expensive first, instead of
letting latency grow: the rung leaves the multivariant playlist, its window ends,
and the broadcaster and the metrics are told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from live.hls import HlsStream, HlsWindow, Rendition
from live.hls.spill import SegmentSpill
from live.ladder.encode import (
    FLUSHED,
    Flush,
    LadderEncoder,
    LadderInput,
    RungOp,
    RungPart,
    SegmentStart,
    SourcePart,
    SourceTracks,
)
from live.ladder.plan import Rung
from live.media.packet import TrackInfo
from live.media.timeline import TimedSample
from live.packaging.fmp4 import Fmp4Writer
from live.transcode.worker import CodecWorker

log = logging.getLogger(__name__)

# How long a part may wait for the codecs before the most expensive rung is shed.
# A wait, not a queue length: a burst (the first GOPs, released together) that
# the codecs clear quickly is no reason to shed.
SHED_AFTER_S = 3.0
_MAX_PENDING = 400


@dataclass
class _RungOutput:
    rung: Rung
    window: HlsWindow
    writer: Fmp4Writer | None = None
    rendition: Rendition | None = None


class Ladder:
    def __init__(
        self,
        rungs: list[Rung],
        *,
        source_window: HlsWindow,
        stream: Callable[[], HlsStream | None],
        frame_rate: Callable[[], float | None],
        on_warning: Callable[[str], None],
        preset: str = "veryfast",
        spill: Callable[[], SegmentSpill] | None = None,
    ) -> None:
        """`spill` makes where each rung window keeps segments that have left its
        playlist (default: memory)."""
        self.rungs = rungs
        self._stream = stream
        self._frame_rate = frame_rate
        self._on_warning = on_warning
        self._audio: TrackInfo | None = None
        self.shed: list[str] = []
        self.ended = False
        self._encoder = LadderEncoder(rungs, preset=preset)
        self._outputs = {
            rung.name: _RungOutput(
                rung,
                HlsWindow(
                    target_duration=source_window.target_duration,
                    part_target=source_window.part_target,
                    window_segments=source_window.window_segments,
                    first_number=source_window.first_msn,
                    spill=spill() if spill is not None else None,
                ),
            )
            for rung in rungs
        }
        self._submitted: deque[float] = deque()  # when each queued item went in
        self._last_shed = 0.0
        self._flushed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._worker: CodecWorker[LadderInput, list[tuple[str, RungOp]]] = CodecWorker(
            "ladder", self._process, self._deliver, max_pending=_MAX_PENDING
        )

    def _process(self, item: LadderInput) -> list[tuple[str, RungOp]]:
        """In the worker thread. Never raises: every item must give exactly one
        result, which is how results are matched to submissions."""
        try:
            return self._encoder.process(item)
        except Exception:
            log.exception("ladder: codec work failed")
            return [FLUSHED] if isinstance(item, Flush) else []

    @property
    def windows(self) -> list[HlsWindow]:
        """Every rung's window, shed ones included."""
        return [output.window for output in self._outputs.values()]

    @property
    def busy_s(self) -> float:
        return self._worker.busy_s

    # -- what the source packager did --------------------------------------------------

    def on_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        self._audio = next((t for t in tracks if t.kind == "audio"), None)
        self._submit(SourceTracks(tracks))

    def on_segment(self, discontinuity: bool, program_date_time: datetime) -> None:
        self._submit(SegmentStart(discontinuity, program_date_time))

    def on_part(self, samples: list[TimedSample], end: int, independent: bool) -> None:
        self._submit(SourcePart(tuple(samples), end, independent))
        now = time.monotonic()
        if (
            self._submitted
            and now - self._submitted[0] > SHED_AFTER_S
            and now - self._last_shed > SHED_AFTER_S
        ):
            self._last_shed = now
            self._shed_one()

    def on_end(self) -> None:
        """The source ended: flush the codecs, then end every rung window."""
        if not self._submit(Flush()):
            self._end_windows()
            self._flushed.set_result(None)
        self.ended = True

    def _submit(self, item: LadderInput) -> bool:
        if self.ended:
            return False
        self._submitted.append(time.monotonic())
        if not self._worker.submit(item):
            self._submitted.pop()
            log.error("ladder queue full; dropping the ladder")
            for output in self._outputs.values():
                self._drop(output)
            return False
        return True

    # -- shedding -------------------------------------------------------------------------

    def _shed_one(self) -> None:
        active = [o for o in self._outputs.values() if o.rung.name not in self.shed]
        if not active:
            return
        victim = max(active, key=lambda o: o.rung.width * o.rung.height)
        self.shed.append(victim.rung.name)
        self._encoder.disabled.add(victim.rung.name)
        self._drop(victim)
        message = (
            f"The server cannot encode the ladder in real time; rendition {victim.rung.name} "
            "was dropped. Publish at a lower resolution or frame rate, or give the server "
            "more CPU."
        )
        log.warning(message)
        self._on_warning(message)

    def _drop(self, output: _RungOutput) -> None:
        stream = self._stream()
        if stream is not None and output.rendition in stream.renditions:
            stream.renditions.remove(output.rendition)
        if not output.window.ended:
            output.window.end()

    # -- results from the worker ------------------------------------------------------

    def _deliver(self, ops: list[tuple[str, RungOp]]) -> None:
        if self._submitted:
            self._submitted.popleft()  # results come back in the order items went in
        for name, (kind, value) in ops:
            if kind == "flushed":
                self._end_windows()
                if not self._flushed.done():
                    self._flushed.set_result(None)
                continue
            output = self._outputs.get(name)
            if output is None or output.window.ended or name in self.shed:
                continue
            if kind == "track":
                assert isinstance(value, TrackInfo)
                self._set_track(output, value)
            elif kind == "segment":
                assert isinstance(value, SegmentStart)
                if output.writer is not None:
                    output.window.start_segment(
                        discontinuity=value.discontinuity,
                        program_date_time=value.program_date_time,
                    )
            elif kind == "part":
                assert isinstance(value, RungPart)
                self._add_part(output, value)

    def _set_track(self, output: _RungOutput, track: TrackInfo) -> None:
        tracks = [track] + ([self._audio] if self._audio is not None else [])
        output.writer = Fmp4Writer(tracks)
        output.window.set_init(output.writer.init)
        codecs = ",".join(t.codec_string for t in tracks if t.codec_string)
        output.rendition = Rendition(
            name=output.rung.name,
            window=output.window,
            bandwidth=int((output.rung.bitrate + (128_000 if self._audio else 0)) * 1.2),
            average_bandwidth=output.rung.bitrate + (128_000 if self._audio else 0),
            codecs=codecs,
            resolution=(track.width or output.rung.width, track.height or output.rung.height),
            frame_rate=self._frame_rate(),
        )

    def _add_part(self, output: _RungOutput, part: RungPart) -> None:
        if output.writer is None or part.duration_ticks <= 0:
            return
        timescale = output.writer.timescales["video"]
        output.window.add_part(
            output.writer.fragment(part.samples),
            part.duration_ticks / timescale,
            part.independent,
        )
        stream = self._stream()
        if stream is not None and output.rendition not in stream.renditions:
            stream.renditions.append(output.rendition)

    def _end_windows(self) -> None:
        for output in self._outputs.values():
            if not output.window.ended:
                output.window.end()

    async def close(self, timeout_s: float = 10.0) -> None:
        """After `on_end`: wait for the flushed frames, then stop the worker."""
        try:
            await asyncio.wait_for(asyncio.shield(self._flushed), timeout_s)
        except TimeoutError:
            log.warning("ladder flush timed out")
        self._end_windows()
        await self._worker.close()
