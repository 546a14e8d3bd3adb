"""The recorder: a Broadcast consumer that writes each session to storage as it goes.

It reads its own bounded Subscription, so it can never slow the publisher or the
live window: if storage stalls, its queue fills and the hub drops media for it
alone (a Gap, recorded as a discontinuity). Packets become the same CMAF the live
window gets (Timeline → cutter → Fmp4Writer); each part is stored, then named in
the index, by one writer thread per recorder, in order. The loop only groups
samples; fragment building and every file write happen in that thread. Parts
reach the kernel at once (a killed process loses at most the part in flight); the
file system is synced once a segment, which bounds what a power cut can take
without paying an fsync per part.

One Broadcast is one session, reconnects within the window included (a
PublisherChanged is a discontinuity, not a new asset). A takeover without a window
opens a new session on the same Broadcast: the recorder then finishes one asset and
starts the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from live.broadcast.hub import Gap, PublisherChanged, StreamEnded, Subscription, TracksChanged
from live.media.packet import MediaPacket, TrackInfo
from live.media.timeline import TimedSample, Timeline
from live.packaging.fmp4 import Fmp4Writer, track_timescale
from live.recording import index as idx
from live.recording.cutter import CutPart, RecordingCutter
from live.storage.base import Storage, StorageError
from live.store.models import Asset

if TYPE_CHECKING:
    from live.broadcast.broadcast import Broadcast
    from live.recording.service import RecordingService

log = logging.getLogger(__name__)

RECORDABLE_CODECS = ("h264", "hevc", "aac", "opus")
BATCH_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class _InitOp:
    number: int
    tracks: tuple[TrackInfo, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class _PartOp:
    part: CutPart
    init: int
    writer: Fmp4Writer


class Recorder:
    """Records one Broadcast: one asset per session."""

    def __init__(
        self,
        broadcast: Broadcast,
        subscription: Subscription,
        service: RecordingService,
        *,
        part_target: float,
        segment_target: float,
    ) -> None:
        self.broadcast = broadcast
        self.subscription = subscription
        self.service = service
        self.storage: Storage = service.storage
        self.part_target = part_target
        self.segment_target = segment_target
        self.asset: Asset | None = None
        self.abandoned = False
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"rec-{broadcast.livestream.id}"
        )
        self._tracks: tuple[TrackInfo, ...] = ()
        self._writer: Fmp4Writer | None = None
        self._timeline: Timeline | None = None
        self._reference = "video"
        self._reset_take()

    def _reset_take(self) -> None:
        """State that belongs to one asset."""
        self._ops: list[_InitOp | _PartOp] = []
        self._cutter: RecordingCutter | None = None
        self._init_number = 0
        self._seq = 0
        self.parts_written = 0
        self.bytes_written = 0

    @property
    def prefix(self) -> str:
        assert self.asset is not None
        return f"assets/{self.asset.id}/"

    # -- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                item = await self.subscription.get()
                if self.abandoned:
                    return
                if isinstance(item, MediaPacket):
                    await self._on_packet(item)
                elif isinstance(item, TracksChanged):
                    self._on_tracks(item.tracks)
                elif isinstance(item, PublisherChanged | Gap):
                    self._on_source_break()
                elif isinstance(item, StreamEnded):
                    await self._finish(item.reason)
                    return
                if self._ops and self.asset is not None:
                    await self._write_pending()
                if not len(self.subscription):
                    # Caught up: let packets gather instead of waking for each one
                    # (a recording needs no low latency, and this halves its CPU).
                    await asyncio.sleep(BATCH_WAIT_S)
        except asyncio.CancelledError:
            raise
        except StorageError as error:
            await self._fail(str(error))
        except Exception as error:
            log.exception("recorder of %s failed", self.broadcast.livestream.id)
            await self._fail(f"recording failed: {error}")
        finally:
            self._executor.shutdown(wait=False)
            self.service.recorder_done(self)

    async def drained(self) -> None:
        """Wait until the write in progress, if any, is over."""
        with contextlib.suppress(RuntimeError):  # the thread is already gone
            await self._in_thread(lambda: None)

    def abandon(self) -> None:
        """Stop at once without finalising (the asset is being deleted)."""
        self.abandoned = True
        self.broadcast.hub.unsubscribe(self.subscription)

    # -- input ----------------------------------------------------------------------

    def _on_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        usable = tuple(t for t in tracks if t.codec in RECORDABLE_CODECS)
        if not usable:
            log.warning("stream %s: no recordable codec", self.broadcast.livestream.id)
            return
        self._release_held()
        self._tracks = usable
        self._reference = "video" if any(t.kind == "video" for t in usable) else "audio"
        self._writer = Fmp4Writer(usable)
        timescales = {t.kind: track_timescale(t) for t in usable}
        if self._timeline is None:
            self._timeline = Timeline(timescales)
        else:
            self._timeline.retrack(timescales)
        self._new_init()

    def _new_init(self) -> None:
        assert self._writer is not None
        has_video = self._reference == "video"
        if self._cutter is None:
            self._cutter = RecordingCutter(
                part_target=self.part_target,
                segment_target=self.segment_target,
                has_video=has_video,
            )
        else:
            self._queue(self._cutter.break_source(has_video=has_video))
        self._init_number += 1
        self._ops.append(_InitOp(self._init_number, self._tracks, self._writer.init))

    def _on_source_break(self) -> None:
        self._release_held()
        if self._timeline is not None:
            self._timeline.reanchor()
        if self._cutter is not None:
            self._queue(self._cutter.break_source())

    async def _on_packet(self, packet: MediaPacket) -> None:
        if self._timeline is None:
            return
        session = self.broadcast.session
        if self.asset is None:
            if session is None:
                return
            await self._start_asset()
        elif session is not None and session.id != self.asset.session_id:
            await self._next_session()
            if self.abandoned:
                return
        sample = self._timeline.push(packet)
        if sample is not None:
            self._on_sample(sample)

    def _on_sample(self, sample: TimedSample) -> None:
        assert self._writer is not None and self._cutter is not None
        kind = sample.packet.kind
        reference = kind == self._reference
        duration = sample.duration / self._writer.timescales[kind] if reference else 0.0
        keyframe = kind == "video" and sample.packet.keyframe
        self._queue(self._cutter.add(sample, duration, keyframe))

    def _release_held(self) -> None:
        if self._timeline is not None and self._cutter is not None:
            for sample in self._timeline.flush():
                self._on_sample(sample)

    def _queue(self, parts: list[CutPart]) -> None:
        assert self._writer is not None
        for part in parts:
            self._ops.append(_PartOp(part, self._init_number, self._writer))

    # -- assets ---------------------------------------------------------------------

    async def _start_asset(self) -> None:
        session = self.broadcast.session
        assert session is not None
        self.asset = await self.service.create_asset(self.broadcast.livestream, session)
        log.info("stream %s: recording session %s as %s",
                 self.broadcast.livestream.id, session.id, self.asset.id)

    async def _next_session(self) -> None:
        """A new session on the same Broadcast (takeover without a window)."""
        await self._close_take("publisher_disconnected")
        self._reset_take()
        if self._timeline is not None:
            self._timeline.reanchor()
        if not self.broadcast.livestream.record:
            self.abandon()
            return
        self._new_init()
        await self._start_asset()

    async def _finish(self, reason: str) -> None:
        if self.asset is None:
            return  # nothing was ever received
        await self._close_take(reason)

    async def _close_take(self, reason: str) -> None:
        """Store what is left and hand the asset over to be finalised."""
        self._release_held()
        if self._cutter is not None:
            self._queue(self._cutter.flush())
        await self._write_pending()
        asset = self.asset
        assert asset is not None
        if self.abandoned:
            return
        await self._in_thread(self.storage.append, self.prefix + idx.INDEX, idx.end_line(reason))
        await self._in_thread(self.storage.sync)
        self.service.finalise_later(asset)

    async def _fail(self, message: str) -> None:
        log.error("stream %s: recording failed: %s", self.broadcast.livestream.id, message)
        self.broadcast.hub.unsubscribe(self.subscription)
        if self.asset is not None:
            await self.service.fail_asset(self.asset, message)

    # -- writing (in the recorder's thread) -------------------------------------------

    async def _in_thread(self, function, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def _write_pending(self) -> None:
        if not self._ops or self.asset is None or self.abandoned:
            return
        ops, self._ops = self._ops, []
        first_seq = self._seq
        self._seq += sum(1 for op in ops if isinstance(op, _PartOp))
        written, size = await self._in_thread(self._write_ops, self.prefix, ops, first_seq)
        self.parts_written += written
        self.bytes_written += size

    def _write_ops(self, prefix: str, ops: list[_InitOp | _PartOp], seq: int) -> tuple[int, int]:
        """Each object first, then its index line: the index never names a torn object."""
        storage = self.storage
        written = size = 0
        for op in ops:
            if isinstance(op, _InitOp):
                storage.put(prefix + idx.init_key(op.number), op.data)
                storage.append(prefix + idx.INDEX, idx.init_line(op.number, op.tracks))
                continue
            seq += 1
            if op.part.segment_start and seq > 1:
                storage.sync()  # the segment before this one survives a power cut
            data = op.writer.fragment(op.part.items)
            storage.put(prefix + idx.part_key(seq), data, sync=False)
            line = idx.part_line(
                seq, op.part.segment, op.init, op.part.duration, len(data), op.part.discontinuity
            )
            storage.append(prefix + idx.INDEX, line, sync=False)
            written += 1
            size += len(data)
        return written, size
