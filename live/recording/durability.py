"""When a recording's objects reach the disk: one flush for every stream, every few
seconds, instead of two per object.

The recorder writes its segments, manifests and init sections with
`durable=False` (storage/base.py). On local disk that skips the fsync of each file
and of its directory, which made the recorder's worker thread do the writeback
itself: four fsyncs per segment per stream, and about half of what recording cost
in CPU. Without them the kernel's flusher threads write the pages back, as they do
for any server that does not fsync (nginx-rtmp, MediaMTX, SRS).

Durability is then explicit and cheap:
- `PeriodicSync` calls `Storage.sync()` (on local disk: the files written since
  the last sync, flushed together in a worker thread) at most once every
  `SYNC_INTERVAL_S`, for all streams at once, and only after something was
  written: an idle server runs no timer.
- Finalising syncs before a recording becomes a `ready` asset (finalize.py).

What each failure can lose:
- a killed process (SIGKILL, OOM): nothing that was stored, since the page cache
  outlives it, and of the segment under way only the part being journalled
  (journal.py);
- a power cut or kernel crash: the segments stored since the last sync (at most
  `SYNC_INTERVAL_S` of them, plus the kernel's own writeback lag when a sync
  fails) and the segment under way. The disk need not keep the order of the
  writes, so a manifest may survive without its segment, or with it cut short:
  on start-up a journal still there stores its segment again over a short one,
  and the recording then ends at its first segment that is not stored whole
  (manifest.py); nothing after a hole is played.

Object stores are durable at each put; there, `sync()` does nothing.

The disk's side: a sync flushes the recording's objects and nothing else. A
flush of the whole file system (syncfs) also wrote back the LL-HLS spool's files
(hls/spool.py), which live a few seconds and otherwise never reach the disk, and
then made their unlink on the event loop wait for that writeback (16 recorded
streams: p50 0.4 ms, max 15 ms per unlink, against 0.1 and 0.7 without). The
journals are not flushed: they guard against a killed process, which the page
cache outlives; on local storage a journal's segment file becomes the segment
object by a rename, and is flushed as that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from live.storage.base import Storage, StorageError

log = logging.getLogger(__name__)

# Seconds between two syncs at most while recordings write: what a power cut can
# lose of what was stored. The kernel writes dirty pages back after 30 s anyway
# (vm.dirty_expire_centisecs), so syncing is about the bound, not the disk work.
SYNC_INTERVAL_S = 5.0


class PeriodicSync:
    """Makes what was written durable within `interval` seconds, with one
    `storage.sync()` for everything written in that time."""

    def __init__(self, storage: Storage, interval: float = SYNC_INTERVAL_S) -> None:
        self.storage = storage
        self.interval = interval
        self.syncs = 0
        self._dirty = False
        self._last = -float("inf")  # monotonic time the last sync began
        self._task: asyncio.Task[None] | None = None

    def written(self) -> None:
        """Something was written that must be durable within the interval. Starts
        the syncing task when none runs; it ends once nothing is left to sync."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="recording-sync")

    async def _run(self) -> None:
        while self._dirty:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.sync()

    async def sync(self) -> None:
        """Sync now: whatever was written so far is durable when this returns
        (unless the storage fails, which is logged: the kernel still writes the
        pages back in its own time)."""
        self._dirty = False
        self._last = time.monotonic()
        try:
            await self.storage.sync()
        except StorageError as error:
            log.warning("recordings: %s; what was stored reaches the disk later", error)
        self.syncs += 1

    async def close(self) -> None:
        """Stop the task, and sync what it had still to cover."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._dirty:
            await self.sync()
