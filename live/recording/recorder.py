"""The recorder: stores the CMAF the live packager makes, as it goes, one asset per session.

The packager already turns the source's packets into init sections and parts
(moof+mdat); the recorder taps them (`PartTap`) instead of timing and fragmenting
the same packets again. A tap call only appends to a bounded queue, so recording
can never slow the publisher or the live window: if storage stalls, the queue
fills and parts are dropped for the recorder alone until the next segment, which
starts after a discontinuity (the gap). Each part is appended to its segment's
object, then named in the index, by one writer thread per recorder, in order.
The loop hands parts to that thread without waiting for each write (a round trip
through an executor costs more CPU than the write itself); it waits only at the
end of an asset. Parts reach the kernel at once (a killed process loses at most
the part in flight); the file system is synced once a segment, which bounds what
a power cut can take without paying an fsync per part.

A recording's segments are longer than the live window's: a live segment that
begins on a keyframe starts a new recording segment once `segment_target` is
reached, and every discontinuity or new init section starts one.

One Broadcast is one session, reconnects within the window included (a new
publisher is a discontinuity, not a new asset). A takeover without a window opens
a new session on the same Broadcast: at that discontinuity the recorder finishes
one asset and starts the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from live.media.packet import TrackInfo
from live.recording import index as idx
from live.storage.base import Appender, Storage, StorageError
from live.store.models import Asset

if TYPE_CHECKING:
    from live.broadcast.broadcast import Broadcast
    from live.packaging.packager import HlsPackager
    from live.recording.service import RecordingService

log = logging.getLogger(__name__)

# About 30 s of 200 ms parts before a recorder whose storage stalls starts dropping.
QUEUE_PARTS = 150


# What the packager hands over, queued on the event loop.
@dataclass(frozen=True, slots=True)
class _Init:
    data: bytes
    tracks: tuple[TrackInfo, ...]


@dataclass(frozen=True, slots=True)
class _Segment:
    discontinuity: bool


@dataclass(frozen=True, slots=True)
class _Part:
    data: bytes
    duration: float
    independent: bool


@dataclass(frozen=True, slots=True)
class _End:
    reason: str


# What the writer thread does, in order; numbered on the event loop.
@dataclass(frozen=True, slots=True)
class _InitWrite:
    prefix: str
    number: int
    tracks: tuple[TrackInfo, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class _PartWrite:
    prefix: str
    seq: int
    segment: int
    init: int
    duration: float
    data: bytes
    segment_start: bool
    discontinuity: bool


@dataclass(frozen=True, slots=True)
class _EndWrite:
    """The index's last line and a sync; `done` tells the loop the asset is stored."""

    prefix: str
    reason: str
    done: concurrent.futures.Future[None]


@dataclass(frozen=True, slots=True)
class _Barrier:
    done: concurrent.futures.Future[None]


_Job = _InitWrite | _PartWrite | _EndWrite | _Barrier


class Recorder:
    """Records one Broadcast from its packager's parts: one asset per session."""

    def __init__(
        self,
        broadcast: Broadcast,
        packager: HlsPackager,
        service: RecordingService,
        *,
        segment_target: float,
        queue_parts: int = QUEUE_PARTS,
    ) -> None:
        self.broadcast = broadcast
        self.packager = packager
        self.service = service
        self.storage: Storage = service.storage
        self.segment_target = segment_target
        self.queue_parts = queue_parts
        self.asset: Asset | None = None
        self.abandoned = False
        self.dropped_parts = 0
        self.gaps = 0
        self.parts_written = 0  # by the writer thread, over every asset
        self.bytes_written = 0
        self._queue: deque[_Init | _Segment | _Part | _End] = deque()
        self._wake = asyncio.Event()
        self._dropping = False
        self._init: _Init | None = None  # the packager's latest init section
        self._queued_init: _Init | None = None  # the latest one queued
        self._current_init: _Init | None = None  # the one the next part uses
        self._parts_sent = 0  # handed to the writer thread
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._write_error: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False  # the thread was told to end after what is queued
        self._segment_out: Appender | None = None  # the writer thread's open objects
        self._index_out: Appender | None = None
        # A daemon: a clean stop waits for the writes (the end of each asset does),
        # and a loop that dies without stopping the recorder must not hang the exit.
        self._thread = threading.Thread(
            target=self._write_loop, name=f"rec-{broadcast.livestream.id}", daemon=True
        )
        self._reset_take()

    def _reset_take(self) -> None:
        """State that belongs to one asset."""
        self._init_number = 0
        self._written_init: _Init | None = None
        self._seq = 0
        self._segment = 0
        self._segment_duration = 0.0
        self._live_segment: bool | None = None  # a live segment began: its discontinuity
        self._gap = False

    @property
    def prefix(self) -> str:
        assert self.asset is not None
        return f"assets/{self.asset.id}/"

    # -- the packager's tap (on the event loop, in the packager's stride) -------------

    def on_init(self, data: bytes, tracks: tuple[TrackInfo, ...]) -> None:
        self._init = _Init(data, tracks)
        if not self._dropping:
            self._queue_item(self._init)

    def on_segment(self, discontinuity: bool) -> None:
        if self._dropping:
            if self.pending_parts >= self.queue_parts:
                return
            # Room again: carry on from this segment, after a gap.
            self._dropping = False
            if self._init is not None and self._init is not self._queued_init:
                self._queue_item(self._init)  # dropped while the queue was full
            discontinuity = True
        self._queue_item(_Segment(discontinuity))

    def on_part(self, data: bytes, duration: float, independent: bool) -> None:
        if not self._dropping and self.pending_parts >= self.queue_parts:
            self._dropping = True
            self.gaps += 1
            log.warning(
                "stream %s: storage is behind; recording skips to the next segment",
                self.broadcast.livestream.id,
            )
        if self._dropping:
            self.dropped_parts += 1
            return
        self._queue_item(_Part(data, duration, independent))

    def on_end(self, reason: str) -> None:
        self._queue.append(_End(reason))
        self._wake.set()

    @property
    def pending_parts(self) -> int:
        """Parts received and not yet stored (an upper bound: the queue holds
        segment marks and init sections too)."""
        return len(self._queue) + self._parts_sent - self.parts_written

    def _queue_item(self, item: _Init | _Segment | _Part) -> None:
        if isinstance(item, _Init):
            self._queued_init = item
        self._queue.append(item)
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        try:
            while not self.abandoned:
                await self._wake.wait()
                self._wake.clear()
                self._raise_write_error()
                while self._queue and not self.abandoned:
                    item = self._queue.popleft()
                    if isinstance(item, _End):
                        await self._finish(item.reason)
                        return
                    await self._take(item)
        except asyncio.CancelledError:
            raise
        except StorageError as error:
            await self._fail(str(error))
        except Exception as error:
            log.exception("recorder of %s failed", self.broadcast.livestream.id)
            await self._fail(f"recording failed: {error}")
        finally:
            self._detach()
            self._stopping = True
            self._jobs.put(None)  # the thread ends after what is queued
            self.service.recorder_done(self)

    async def drained(self) -> None:
        """Wait until the writes handed to the thread, if any, are over."""
        if self._thread.ident is None:
            return  # never started
        if self._stopping:
            await asyncio.to_thread(self._thread.join)
        else:
            await self._barrier()

    def abandon(self) -> None:
        """Stop at once without finalising (the asset is being deleted)."""
        self.abandoned = True
        self._detach()
        self._wake.set()

    def _detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.packager.taps.remove(self)

    async def _take(self, item: _Init | _Segment | _Part) -> None:
        """Number what the packager made into this asset's inits, segments and parts."""
        if isinstance(item, _Init):
            self._current_init = item  # stored with the first part that uses it
            return
        if isinstance(item, _Segment):
            if item.discontinuity:
                self._gap = True
                await self._check_session()
            self._live_segment = item.discontinuity
            return
        init = self._current_init
        if init is None or self.abandoned:
            return
        if self.asset is None:
            if self.broadcast.session is None:
                return
            await self._start_asset()
        new_init = self._written_init is not init
        if new_init:
            self._init_number += 1
            self._written_init = init
            self._jobs.put(_InitWrite(self.prefix, self._init_number, init.tracks, init.data))
        live_segment, self._live_segment = self._live_segment, None
        starts = (
            self._segment == 0
            or new_init
            or (live_segment is not None and self._gap)
            or (
                live_segment is not None
                and item.independent
                and self._segment_duration >= self.segment_target * 0.95
            )
        )
        if starts:
            discontinuity = self._gap and self._seq > 0
            self._gap = False
            self._segment += 1
            self._segment_duration = 0.0
        else:
            discontinuity = False
        self._seq += 1
        self._segment_duration += item.duration
        self._parts_sent += 1
        self._jobs.put(
            _PartWrite(self.prefix, self._seq, self._segment, self._init_number, item.duration,
                       item.data, starts, discontinuity)
        )  # fmt: skip

    async def _check_session(self) -> None:
        """A discontinuity is where a new session (a takeover without a window) begins."""
        session = self.broadcast.session
        if self.asset is not None and session is not None and session.id != self.asset.session_id:
            await self._next_session()

    # -- assets ---------------------------------------------------------------------

    async def _start_asset(self) -> None:
        session = self.broadcast.session
        assert session is not None
        self.asset = await self.service.create_asset(self.broadcast.livestream, session)
        log.info(
            "stream %s: recording session %s as %s",
            self.broadcast.livestream.id,
            session.id,
            self.asset.id,
        )

    async def _next_session(self) -> None:
        """A new session on the same Broadcast (takeover without a window)."""
        await self._close_take("publisher_disconnected")
        self._reset_take()
        self.asset = None
        if not self.broadcast.livestream.record:
            self.abandon()

    async def _finish(self, reason: str) -> None:
        if self.asset is None:
            return  # nothing was ever received
        await self._close_take(reason)

    async def _close_take(self, reason: str) -> None:
        """Store what is left and hand the asset over to be finalised."""
        asset = self.asset
        assert asset is not None
        if self.abandoned:
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._jobs.put(_EndWrite(self.prefix, reason, done))
        await asyncio.wrap_future(done)
        self._raise_write_error()
        if not self.abandoned:
            self.service.finalise_later(asset)

    async def _fail(self, message: str) -> None:
        log.error("stream %s: recording failed: %s", self.broadcast.livestream.id, message)
        self._detach()
        if self.asset is not None:
            await self.service.fail_asset(self.asset, message)

    # -- writing (in the recorder's thread) -------------------------------------------

    async def _barrier(self) -> None:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._jobs.put(_Barrier(done))
        await asyncio.wrap_future(done)

    def _raise_write_error(self) -> None:
        if self._write_error is not None:
            raise self._write_error

    def _write_loop(self) -> None:
        """The writer thread: every job in order; after a failure, only the barriers."""
        try:
            while (job := self._jobs.get()) is not None:
                try:
                    if self._write_error is None and not self.abandoned:
                        self._write(job)
                except Exception as error:
                    self._write_error = error
                    self._close_files()
                    if not isinstance(job, _EndWrite | _Barrier):
                        assert self._loop is not None
                        with contextlib.suppress(RuntimeError):  # the loop is gone
                            self._loop.call_soon_threadsafe(self._wake.set)
                if isinstance(job, _EndWrite | _Barrier):
                    job.done.set_result(None)
        finally:
            self._close_files()

    def _write(self, job: _Job) -> None:
        """The bytes first, then their index line: the index never names a torn part.
        The current segment and the index stay open between parts."""
        storage = self.storage
        if isinstance(job, _Barrier):
            return
        if isinstance(job, _EndWrite):
            self._close_files()
            storage.append(job.prefix + idx.INDEX, idx.end_line(job.reason))
            storage.sync()
            return
        if isinstance(job, _InitWrite):
            storage.put(job.prefix + idx.init_key(job.number), job.data)
            self._index_file(job.prefix).write(idx.init_line(job.number, job.tracks))
            return
        if job.segment_start:
            if self._segment_out is not None:
                self._segment_out.close()
                self._segment_out = None
            if job.seq > 1:
                storage.sync()  # the segment before this one survives a power cut
            self._segment_out = storage.appender(job.prefix + idx.segment_key(job.segment))
        assert self._segment_out is not None
        self._segment_out.write(job.data)
        line = idx.part_line(
            job.seq, job.segment, job.init, job.duration, len(job.data), job.discontinuity
        )
        self._index_file(job.prefix).write(line)
        self.bytes_written += len(job.data)
        self.parts_written += 1

    def _index_file(self, prefix: str) -> Appender:
        if self._index_out is None or self._index_out.key != prefix + idx.INDEX:
            if self._index_out is not None:
                self._index_out.close()
            self._index_out = self.storage.appender(prefix + idx.INDEX)
        return self._index_out

    def _close_files(self) -> None:
        for out in (self._segment_out, self._index_out):
            if out is not None:
                with contextlib.suppress(OSError):
                    out.close()
        self._segment_out = self._index_out = None
