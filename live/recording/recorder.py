"""The recorder: stores the CMAF the live packager makes, one asset per session,
every object written once.

The packager already turns the source's packets into init sections and parts
(moof+mdat); the recorder taps them (`PartTap`) instead of timing and fragmenting
the same packets again. A tap call only appends to a bounded queue, so recording
can never slow the publisher or the live window: if storage stalls, the queue
fills and parts are dropped for the recorder alone until the next segment, which
starts after a discontinuity (the gap).

Object stores have no append, so nothing grows: the parts of the VOD segment under
way are held in memory (one segment per recorded rendition), and when it is
complete it is written as one object, then its manifest (manifest.py) as another;
an init section is written once per version, with the first segment that uses it.
Writes run on the event loop (S3 is asynchronous; local storage moves its file I/O
to worker threads), one after the other, in the background while the next segment
is gathered, so the manifests that exist always name complete segments. They are
not flushed to disk one by one: the service syncs every few seconds for all
streams, and before finalising (durability.py, which says what a power cut can
lose; a manifest whose segment did not reach the disk ends the recording). With a
`journal_dir`, each part taken is also appended to the segment's journal on local
disk (journal.py), deleted once the segment is stored: a killed process then loses
only the part being appended (and the one the packager was making), as the next
start stores the journal's segment before finalising the rest from the manifests.
On local storage the journal's segment file is moved into storage as the segment
object, so the parts are written once, not once to the journal and again.
Without one, it loses the segment under way (at most `segment_target` plus a
keyframe interval).

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
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from live.media.packet import TrackInfo
from live.recording import layout
from live.recording.journal import SegmentJournal, journal_path
from live.recording.manifest import PartEntry, SegmentEntry, store_segment
from live.storage.base import Storage, StorageError
from live.store.models import Asset, Livestream, Session
from live.store.times import to_rfc3339, utcnow

if TYPE_CHECKING:
    from live.broadcast.broadcast import Broadcast
    from live.packaging.packager import HlsPackager

log = logging.getLogger(__name__)

# About 30 s of 200 ms parts waiting to be stored before a recorder whose storage
# stalls starts dropping.
QUEUE_PARTS = 150


class AssetKeeper(Protocol):
    """What a recorder asks of the assets' owner (the RecordingService)."""

    async def create_asset(self, livestream: Livestream, session: Session) -> Asset: ...

    def finalise_later(self, asset: Asset) -> None: ...

    async def fail_asset(self, asset: Asset, message: str) -> None: ...

    def recorder_done(self, recorder: Recorder) -> None: ...

    def segment_stored(self) -> None:
        """A segment was written, durable only at the next sync (durability.py)."""
        ...


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


@dataclass(slots=True)
class _SegmentBuffer:
    """The VOD segment under way: its manifest entry, its parts' bytes and their
    journal (None without a journal directory, or when it could not be written)."""

    entry: SegmentEntry
    chunks: list[bytes] = field(default_factory=list)
    journal: SegmentJournal | None = None


class Recorder:
    """Records one Broadcast from its packager's parts: one asset per session."""

    def __init__(
        self,
        broadcast: Broadcast,
        packager: HlsPackager,
        keeper: AssetKeeper,
        storage: Storage,
        *,
        segment_target: float,
        queue_parts: int = QUEUE_PARTS,
        journal_dir: Path | None = None,
    ) -> None:
        self.broadcast = broadcast
        self.packager = packager
        self.keeper = keeper
        self.storage = storage
        self.segment_target = segment_target
        self.queue_parts = queue_parts
        self.journal_dir = journal_dir
        self.asset: Asset | None = None
        self.abandoned = False
        self.dropped_parts = 0
        self.gaps = 0
        self.parts_written = 0  # stored, over every asset
        self.bytes_written = 0
        self.segments_written = 0
        self._queue: deque[_Init | _Segment | _Part | _End] = deque()
        self._wake = asyncio.Event()
        self._dropping = False
        self._init: _Init | None = None  # the packager's latest init section
        self._queued_init: _Init | None = None  # the latest one queued
        self._current_init: _Init | None = None  # the one the next part uses
        self._started = False
        self._finished = asyncio.Event()
        # The complete segment being written while the next one is gathered.
        self._storing: asyncio.Task[None] | None = None
        self._reset_take()

    def _reset_take(self) -> None:
        """State that belongs to one asset."""
        self._init_number = 0
        self._numbered_init: _Init | None = None
        self._unstored_inits: dict[int, _Init] = {}
        self._seq = 0
        self._segment = 0
        self._media_time = 0.0
        self._buffer: _SegmentBuffer | None = None
        self._live_segment: bool | None = None  # a live segment began: its discontinuity
        self._gap = False

    @property
    def prefix(self) -> str:
        assert self.asset is not None
        return layout.asset_prefix(self.asset.id)

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
        """Parts received and not yet gathered into a segment: they wait while the
        segment before the one complete is still being written (an upper bound: the
        queue holds segment marks and init sections too)."""
        return len(self._queue)

    def _queue_item(self, item: _Init | _Segment | _Part) -> None:
        if isinstance(item, _Init):
            self._queued_init = item
        self._queue.append(item)
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        self._started = True
        try:
            while not self.abandoned:
                await self._wake.wait()
                self._wake.clear()
                while self._queue and not self.abandoned:
                    item = self._queue.popleft()
                    if isinstance(item, _End):
                        await self._finish(item.reason)
                        return
                    await self._take(item)
            # Abandoned: the asset goes; nothing may write after `drained`.
            with contextlib.suppress(StorageError):
                await self._stored()
            await self._discard_journal(self._buffer)
        except asyncio.CancelledError:
            raise
        except StorageError as error:
            await self._fail(str(error))
        except Exception as error:
            log.exception("recorder of %s failed", self.broadcast.livestream.id)
            await self._fail(f"recording failed: {error}")
        finally:
            self._detach()
            if self._storing is not None:  # cancelled: its journal stays for recovery
                self._storing.cancel()
            if self._buffer is not None and self._buffer.journal is not None:
                self._buffer.journal.close()  # a cancelled recorder's is kept for recovery
            self._buffer = None
            self._finished.set()
            self.keeper.recorder_done(self)

    async def drained(self) -> None:
        """Wait until the recorder has stopped writing (after `abandon`)."""
        if self._started:
            await self._finished.wait()

    def abandon(self) -> None:
        """Stop at once without finalising (the asset is being deleted)."""
        self.abandoned = True
        self._detach()
        self._wake.set()

    def _detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.packager.taps.remove(self)

    async def _take(self, item: _Init | _Segment | _Part) -> None:
        """Gather what the packager made into this asset's segments, storing each
        one as soon as the next begins."""
        if isinstance(item, _Init):
            self._current_init = item  # numbered with the first part that uses it
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
        new_init = self._numbered_init is not init
        live_segment, self._live_segment = self._live_segment, None
        starts = (
            self._buffer is None
            or new_init
            or (live_segment is not None and self._gap)
            or (
                live_segment is not None
                and item.independent
                and self._buffer.entry.duration >= self.segment_target * 0.95
            )
        )
        finished = None
        if starts:
            finished, self._buffer = self._buffer, None  # the one before, complete
            if new_init:
                self._init_number += 1
                self._numbered_init = init
                self._unstored_inits[self._init_number] = init
            self._segment += 1
            entry = SegmentEntry(
                number=self._segment,
                init=self._init_number,
                discontinuity=self._gap and self._seq > 0,
                first_part=self._seq + 1,
                media_start_s=self._media_time,
                started_at=to_rfc3339(utcnow()),
            )
            self._buffer = _SegmentBuffer(entry, journal=await self._open_journal(entry, init))
            self._gap = False
        buffer = self._buffer
        assert buffer is not None
        self._seq += 1
        self._media_time += item.duration
        buffer.entry.parts.append(PartEntry(item.duration, len(item.data), item.independent))
        buffer.chunks.append(item.data)
        if buffer.journal is not None:
            try:
                # On the loop, as nginx-rtmp writes its recordings: a page-cache write
                # of one part costs less than handing it to a worker thread would.
                buffer.journal.append(item.data, item.duration, item.independent)
            except OSError as error:
                self._journal_failed(buffer, error)
        if starts:
            await self._store_later(finished)

    async def _store_later(self, finished: _SegmentBuffer | None) -> None:
        """Write a complete segment in the background while the next one is
        gathered and journalled, so parts never wait for storage in the queue (where
        a kill would lose them). One write at a time: if the one before is still
        going, wait for it (and the queue fills, up to dropping)."""
        await self._stored()
        if finished is not None:
            self._storing = asyncio.create_task(self._store_segment(finished, self.prefix))

    async def _stored(self) -> None:
        """Wait for the segment being written; its StorageError is raised here."""
        storing, self._storing = self._storing, None
        if storing is not None:
            await storing

    async def _open_journal(self, entry: SegmentEntry, init: _Init) -> SegmentJournal | None:
        if self.journal_dir is None or self.asset is None:
            return None
        path = journal_path(self.journal_dir, self.asset.id, entry.number)
        try:
            return await asyncio.to_thread(
                SegmentJournal.create, path, entry, init.data, init.tracks
            )
        except OSError as error:
            self._warn_unjournalled(entry, error)
            return None

    def _warn_unjournalled(self, entry: SegmentEntry, error: OSError) -> None:
        """A local disk problem costs the crash protection, never the recording."""
        log.warning(
            "stream %s: cannot journal segment %d (%s); a crash would lose it",
            self.broadcast.livestream.id,
            entry.number,
            error,
        )

    def _journal_failed(self, buffer: _SegmentBuffer, error: OSError) -> None:
        self._warn_unjournalled(buffer.entry, error)
        assert buffer.journal is not None
        with contextlib.suppress(OSError):
            buffer.journal.discard()  # a torn record would be dropped anyway
        buffer.journal = None

    async def _discard_journal(self, buffer: _SegmentBuffer | None) -> None:
        if buffer is not None and buffer.journal is not None:
            journal, buffer.journal = buffer.journal, None
            with contextlib.suppress(OSError):
                await asyncio.to_thread(journal.discard)

    async def _store_segment(self, buffer: _SegmentBuffer | None, prefix: str) -> None:
        """Write a complete segment, whole: its init section first if it is new,
        then the segment, then its manifest (which names only what is stored);
        then drop its journal."""
        if buffer is None or not buffer.chunks or self.abandoned:
            await self._discard_journal(buffer)
            return
        entry = buffer.entry
        entry.ended_at = to_rfc3339(utcnow())
        init = self._unstored_inits.pop(entry.init, None)
        try:
            size = await store_segment(
                self.storage,
                prefix,
                entry,
                buffer.chunks,
                None if init is None else (init.data, init.tracks),
                durable=False,
                segment_file=self._segment_file(buffer, prefix),
            )
        except BaseException:
            if buffer.journal is not None:  # kept for the next start to store
                buffer.journal.close()
            raise
        buffer.chunks.clear()
        self.keeper.segment_stored()
        await self._discard_journal(buffer)
        self.parts_written += len(entry.parts)
        self.bytes_written += size
        self.segments_written += 1

    def _segment_file(self, buffer: _SegmentBuffer, prefix: str) -> Path | None:
        """The journal's segment file, to become the segment object, when storage
        is local (moving a file into a bucket would upload it from disk, where the
        parts are in memory) and the file holds every part."""
        journal = buffer.journal
        key = prefix + layout.segment_key(buffer.entry.number)
        if journal is None or journal.size != buffer.entry.size:
            return None
        if self.storage.local_path(key) is None:
            return None
        journal.close()  # written to the end; the journal file stays until discarded
        return journal.segment_path

    async def _check_session(self) -> None:
        """A discontinuity is where a new session (a takeover without a window) begins."""
        session = self.broadcast.session
        if self.asset is not None and session is not None and session.id != self.asset.session_id:
            await self._next_session()

    # -- assets ---------------------------------------------------------------------

    async def _start_asset(self) -> None:
        session = self.broadcast.session
        assert session is not None
        self.asset = await self.keeper.create_asset(self.broadcast.livestream, session)
        log.info(
            "stream %s: recording session %s as %s",
            self.broadcast.livestream.id,
            session.id,
            self.asset.id,
        )

    async def _next_session(self) -> None:
        """A new session on the same Broadcast (takeover without a window)."""
        await self._close_take()
        self._reset_take()
        self.asset = None
        if not self.broadcast.livestream.record:
            self.abandon()

    async def _finish(self, reason: str) -> None:
        if self.asset is None:
            return  # nothing was ever received
        log.debug("stream %s: recording ends (%s)", self.broadcast.livestream.id, reason)
        await self._close_take()

    async def _close_take(self) -> None:
        """Store the last segment and hand the asset over to be finalised."""
        asset = self.asset
        assert asset is not None
        await self._stored()
        buffer, self._buffer = self._buffer, None
        await self._store_segment(buffer, self.prefix)
        if not self.abandoned:
            self.keeper.finalise_later(asset)

    async def _fail(self, message: str) -> None:
        log.error("stream %s: recording failed: %s", self.broadcast.livestream.id, message)
        self._detach()
        await self._discard_journal(self._buffer)
        if self.asset is not None:
            await self.keeper.fail_asset(self.asset, message)
