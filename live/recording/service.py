"""Recordings of this node: starts a recorder with each Broadcast, finalises assets,
recovers what a crash left behind, applies retention, deletes assets.

Events: when an asset becomes `ready` or `failed`, every callable in `listeners`
(given at construction) is awaited with `("asset.ready" | "asset.failed", asset)`.
live/app.py passes the webhook outbox's `emit_asset` (with the asset as the API
shows it); a listener that raises is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live.recording.durability import PeriodicSync
from live.recording.finalize import FinaliseError, finalise_recording
from live.recording.journal import (
    list_journals,
    read_journal_files,
    remove_journal,
    replay_journal,
)
from live.recording.layout import asset_prefix
from live.recording.recorder import QUEUE_PARTS, Recorder
from live.storage.base import Storage, StorageError
from live.store.base import Store
from live.store.models import Asset, Livestream, Session, asset_error
from live.store.times import utcnow

if TYPE_CHECKING:
    from live.broadcast.broadcast import Broadcast

log = logging.getLogger(__name__)

ASSET_READY = "asset.ready"
ASSET_FAILED = "asset.failed"
AssetListener = Callable[[str, Asset], Awaitable[None]]

RETENTION_CHECK_S = 3600.0


class RecordingService:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        *,
        segment_target: float = 4.0,
        retention_days: float = 0.0,
        queue_parts: int = QUEUE_PARTS,
        listeners: list[AssetListener] | None = None,
        journal_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.segment_target = segment_target
        self.queue_parts = queue_parts
        self.retention_days = retention_days
        # Local disk for the part journals (journal.py); None records without one.
        self.journal_dir = journal_dir
        self.listeners: list[AssetListener] = list(listeners or [])
        self.recorders: set[Recorder] = set()
        self._finalising: dict[str, asyncio.Task[None]] = {}
        # Finalising is CPU and disk heavy: one at a time (its remux in a worker thread).
        self._finalise_slot = asyncio.Semaphore(1)
        self._retention_task: asyncio.Task[None] | None = None
        # The recorders write without an fsync per object; this makes it durable.
        self.syncing = PeriodicSync(storage)

    # -- the manager's consumer factory ---------------------------------------------

    def consumer(self, broadcast: Broadcast) -> Coroutine[Any, Any, None] | None:
        """Register with `manager.consumers`: records the broadcast when the
        livestream has `record: true`, from the parts its HLS packager makes (the
        live window and the asset are the same CMAF, built once)."""
        packager = broadcast.packager
        if not broadcast.livestream.record or packager is None:
            return None
        recorder = Recorder(
            broadcast,
            packager,
            self,
            self.storage,
            segment_target=self.segment_target,
            queue_parts=self.queue_parts,
            journal_dir=self.journal_dir,
        )
        packager.taps.append(recorder)
        self.recorders.add(recorder)
        return recorder.run()

    def recorder_done(self, recorder: Recorder) -> None:
        self.recorders.discard(recorder)

    def segment_stored(self) -> None:
        self.syncing.written()

    # -- asset life -----------------------------------------------------------------

    async def create_asset(self, livestream: Livestream, session: Session) -> Asset:
        asset = await self.store.create_asset(
            Asset(livestream_id=livestream.id, session_id=session.id)
        )
        session.asset_id = asset.id  # the live session object the API shows
        await self.store.update_session(session.id, asset_id=asset.id)
        return asset

    def finalise_later(self, asset: Asset) -> None:
        """Finalise in the background; `close` waits for it."""
        if asset.id in self._finalising:
            return
        task = asyncio.create_task(self._finalise(asset.id), name=f"finalise-{asset.id}")
        self._finalising[asset.id] = task
        task.add_done_callback(lambda _: self._finalising.pop(asset.id, None))

    async def _finalise(self, asset_id: str) -> None:
        await self.store.update_asset(asset_id, status="processing")
        async with self._finalise_slot:
            try:
                result = await finalise_recording(self.storage, asset_prefix(asset_id))
            except (FinaliseError, StorageError) as error:
                await self._set_failed(asset_id, str(error))
                return
            except Exception as error:
                log.exception("finalising %s failed", asset_id)
                await self._set_failed(asset_id, f"finalising failed: {error}")
                return
        asset = await self.store.update_asset(
            asset_id,
            status="ready",
            error=None,
            duration_s=round(result.duration_s, 3),
            size_bytes=result.size_bytes,
            has_poster=result.has_poster,
            ready_at=utcnow(),
        )
        if asset is not None:
            log.info(
                "asset %s ready: %.1f s, %d bytes", asset_id, result.duration_s, result.size_bytes
            )
            await self._announce(ASSET_READY, asset)
        else:  # deleted while it was being finalised
            await self.storage.delete_prefix(asset_prefix(asset_id))

    async def fail_asset(self, asset: Asset, message: str) -> None:
        await self._set_failed(asset.id, message)

    async def _set_failed(self, asset_id: str, message: str) -> None:
        log.error("asset %s failed: %s", asset_id, message)
        asset = await self.store.update_asset(
            asset_id, status="failed", error=asset_error("processing_failed", message)
        )
        if asset is not None:
            await self._announce(ASSET_FAILED, asset)
        elif asset_id in self._finalising:  # deleted while it was being finalised
            with contextlib.suppress(StorageError):
                await self.storage.delete_prefix(asset_prefix(asset_id))

    async def _announce(self, event: str, asset: Asset) -> None:
        for listener in list(self.listeners):
            try:
                await listener(event, asset)
            except Exception:
                log.exception("asset listener failed on %s", event)

    # -- start-up, retention, deletion ------------------------------------------------

    async def recover(self) -> int:
        """Finalise the assets a crashed process left `recording` or `processing`,
        from the segment manifests in storage (after storing what their journals
        hold). Call after `StreamManager.recover()`."""
        await self.replay_journals()
        count = 0
        page = 1
        while True:
            # Both statuses stay in the filter while finalising, so the pages hold still.
            assets, _ = await self.store.list_assets(
                page, 100, statuses=("recording", "processing")
            )
            if not assets:
                return count
            for asset in assets:
                # Uploads and imports in `processing` belong to the VOD jobs, not here.
                if asset.source != "recording" or asset.id in self._finalising:
                    continue
                log.info("asset %s was left %s: finalising from storage", asset.id, asset.status)
                self.finalise_later(asset)
                count += 1
            page += 1

    async def replay_journals(self) -> int:
        """Store the segments a killed process left in its part journals, for the
        assets still `recording` or `processing` (finalisation follows); journals
        of any other asset are deleted unread. Run at start-up, before any
        recorder: every journal then is a dead process's. How many parts were
        stored."""
        if self.journal_dir is None:
            return 0
        stored = 0
        journals = await asyncio.to_thread(list_journals, self.journal_dir)
        for asset_id, paths in journals.items():
            asset = await self.store.get_asset(asset_id)
            pending = asset is not None and asset.status in ("recording", "processing")
            for path in paths:
                if pending:
                    data, segment = await asyncio.to_thread(read_journal_files, path)
                    try:
                        parts = await replay_journal(
                            self.storage, asset_prefix(asset_id), data, segment
                        )
                    except StorageError as error:
                        log.error("asset %s: journal %s kept: %s", asset_id, path.name, error)
                        continue
                    if parts:
                        log.info("asset %s: %d part(s) stored from %s", asset_id, parts, path.name)
                    stored += parts
                await asyncio.to_thread(remove_journal, path)
        return stored

    def start_retention(self) -> None:
        if self.retention_days > 0 and self._retention_task is None:
            self._retention_task = asyncio.create_task(self._retention_loop())

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.apply_retention()
            except Exception:
                log.exception("retention pass failed")
            await asyncio.sleep(RETENTION_CHECK_S)

    async def apply_retention(self) -> int:
        """Delete finished assets older than `retention_days`; how many."""
        if self.retention_days <= 0:
            return 0
        cutoff = utcnow() - timedelta(days=self.retention_days)
        deleted = 0
        while True:
            assets, _ = await self.store.list_assets(
                1, 100, statuses=("ready", "failed"), created_before=cutoff
            )
            if not assets:
                return deleted
            for asset in assets:
                await self.delete(asset)
                deleted += 1

    async def delete(self, asset: Asset) -> None:
        """Delete an asset's files, then its record; a recording in progress stops."""
        for recorder in list(self.recorders):
            if recorder.asset is not None and recorder.asset.id == asset.id:
                recorder.abandon()
                await recorder.drained()
        task = self._finalising.get(asset.id)
        await self.store.delete_asset(asset.id)
        if task is not None:  # its end finds the record gone and removes the files
            return
        await self.storage.delete_prefix(asset_prefix(asset.id))

    async def close(self, timeout: float = 300.0) -> None:
        """Wait for the finalisations under way (SIGTERM finalises every recording)."""
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        tasks = list(self._finalising.values())
        if tasks:
            log.info("waiting for %d recording(s) to be finalised", len(tasks))
            await asyncio.wait(tasks, timeout=timeout)
        await self.syncing.close()
