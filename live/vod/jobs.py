"""`VodJobs`: this node's workers on the VOD job queue.

`submit(asset)` queues an asset whose file is stored (`pending`); up to `workers`
jobs run at once on this node, each claimed from the store's queue with a lease
(`aggregates/vod_jobs.py`) that is renewed every `renew_s` while the job runs.
- A restart of a single node puts the jobs its previous process was running back
  in the queue (`requeue_vod_jobs`: no other node can be running them) and takes
  them up again; a job resumes from its first pass if that was stored.
- In a cluster every node takes from the same queue in Redis; a node that dies
  stops renewing, and once its lease lapses the job is claimed by another node
  (before any queued job). A node that finds its lease taken stops its child.
- A job that was claimed `max_attempts` times without ending (its worker died
  each time: a file that crashes the decoder, say) fails instead of looping.
- Deleting an asset removes its job, kills its child here (or, on another node,
  that node's next renewal fails and it stops), then removes its files.
- `close()` (SIGTERM) does not wait for a transcode that may take an hour: it
  stops the children and puts their jobs back in the queue, where another node,
  or this one after its restart, takes them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import timedelta

from live.recording import layout
from live.storage.base import Storage, StorageError
from live.store.base import Store
from live.store.errors import StoreUnavailable
from live.store.held_jobs import cancel_and_wait, renewed, run_while_held
from live.store.models import Asset
from live.store.times import utcnow
from live.vod.pipeline import (
    SCRATCH_PREFIX,
    Announce,
    AssetGone,
    PipelineSettings,
    VodPipeline,
)

log = logging.getLogger(__name__)


def default_workers() -> int:
    """One job per two cores, at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


@dataclass(frozen=True, slots=True)
class JobSettings:
    workers: int = 1
    lease_s: float = 30.0
    renew_s: float = 10.0
    poll_s: float = 2.0  # how often an idle worker looks at the queue (other nodes' submits)
    max_attempts: int = 3


# A single node's queue changes only through this process, whose `submit` wakes the
# workers: looking at it every 2 s (a store query each) was, with the viewers'
# sweep, all an idle server did. The look then only catches a lease that lapsed.
SINGLE_NODE_POLL_S = 30.0


class VodJobs:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        *,
        node_id: str,
        pipeline: PipelineSettings,
        announce: Announce,
        settings: JobSettings | None = None,
        single_node: bool = True,
    ) -> None:
        self.store = store
        self.storage = storage
        self.node_id = node_id
        self.settings = settings or JobSettings()
        self.single_node = single_node
        self.pipeline = VodPipeline(store, storage, pipeline, announce)
        self.running: dict[str, asyncio.Task[None]] = {}  # asset id -> its job's run
        self._workers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._closing = False

    async def start(self) -> None:
        if self.single_node:
            requeued = await self.store.requeue_vod_jobs()
            if requeued:
                log.info("%d VOD job(s) left running by the previous process: resuming", requeued)
            # and the scratch files of the jobs it was running
            for leftover in self.storage.scratch_dir().glob(f"{SCRATCH_PREFIX}*"):
                await asyncio.to_thread(shutil.rmtree, leftover, True)
        self._workers = [
            asyncio.create_task(self._worker(), name=f"vod-worker-{n}")
            for n in range(self.settings.workers)
        ]

    async def submit(self, asset: Asset) -> None:
        """Queue the processing of an asset whose file is stored (`pending`)."""
        await self.store.enqueue_vod_job(asset.id)
        self._wake.set()

    async def delete(self, asset: Asset) -> None:
        """Delete an upload's or import's job, record and files."""
        await self.store.remove_vod_job(asset.id)
        task = self.running.get(asset.id)
        if task is not None:
            await cancel_and_wait(task)
        await self.store.delete_asset(asset.id)
        await self.storage.delete_prefix(layout.asset_prefix(asset.id))

    async def close(self) -> None:
        self._closing = True
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    # -- the workers -------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            # Cleared before looking, so a submit while the claim runs is not missed.
            self._wake.clear()
            try:
                job = await self.store.claim_vod_job(
                    self.node_id, utcnow(), utcnow() + timedelta(seconds=self.settings.lease_s)
                )
                if job is not None and job.attempts > self.settings.max_attempts:
                    await self._give_up(job.asset_id, job.attempts - 1)
                elif job is not None:
                    await self._hold(job.asset_id)
            except StoreUnavailable as error:
                log.warning("VOD queue unreachable (%s); retrying", error)
                job = None
            except Exception:  # a worker never dies of one job's trouble
                log.exception("VOD worker: unexpected error; going on")
                job = None
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)

    async def _hold(self, asset_id: str) -> None:
        """Run the job while renewing its lease; stop it if the lease is lost."""
        log.info("VOD job %s: started on %s", asset_id, self.node_id)
        task = asyncio.create_task(self.pipeline.run(asset_id), name=f"vod-{asset_id}")
        self.running[asset_id] = task
        try:
            if not await run_while_held(task, lambda: self._renew(asset_id), self.settings.renew_s):
                log.warning("VOD job %s: lease lost; stopped here", asset_id)
                await self._clean_if_deleted(asset_id)
                return
            if task.cancelled():  # its asset was deleted here: `delete` cleans up
                return
            try:
                task.result()
            except AssetGone:
                await self._clean_if_deleted(asset_id)
            except Exception:
                log.exception("VOD job %s failed", asset_id)
                with contextlib.suppress(AssetGone):
                    await self.pipeline.fail(asset_id, "processing_failed", "processing failed")
            await self.store.remove_vod_job(asset_id, self.node_id)
        except asyncio.CancelledError:
            # shutting down: the child goes, the job goes back to the queue (unless
            # it had just ended)
            await cancel_and_wait(task)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._leave(asset_id))
            raise
        finally:
            self.running.pop(asset_id, None)

    async def _leave(self, asset_id: str) -> None:
        """Give up a job at shutdown: back to the queue, or gone if it had ended."""
        asset = await self.store.get_asset(asset_id)
        if asset is None or asset.status in ("ready", "failed"):
            await self.store.remove_vod_job(asset_id, self.node_id)
        else:
            await self.store.release_vod_job(asset_id, self.node_id)

    async def _renew(self, asset_id: str) -> bool:
        until = utcnow() + timedelta(seconds=self.settings.lease_s)
        return await renewed(
            self.store.renew_vod_job(asset_id, self.node_id, until), f"VOD job {asset_id}"
        )

    async def _clean_if_deleted(self, asset_id: str) -> None:
        """A deleted asset's files, including any stored after the delete removed them."""
        if await self.store.get_asset(asset_id) is None:
            with contextlib.suppress(StorageError):
                await self.storage.delete_prefix(layout.asset_prefix(asset_id))
            await self.store.remove_vod_job(asset_id)

    async def _give_up(self, asset_id: str, attempts: int) -> None:
        message = f"processing stopped {attempts} times without finishing; giving up"
        with contextlib.suppress(AssetGone):
            await self.pipeline.fail(asset_id, "processing_failed", message)
        await self.store.remove_vod_job(asset_id, self.node_id)
