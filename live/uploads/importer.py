"""`Importer`: which node fetches an import by URL, and when.

An import is a job in the store's import queue (`aggregates/import_jobs.py`), so one
live node at a time fetches it, on one node or in a cluster:
- `submit` queues the fetch and claims at once what is claimable: the node that
  received the POST starts fetching without waiting for a round.
- The holder renews its lease every `renew_s` (5 s) while the fetch runs; the lease
  lasts `lease_s` (15 s). A node that finds its lease taken stops its fetch.
- In a cluster, each node looks at the queue every `poll_s` (5 s): a dead node's
  lease lapses and its import is claimed by another, which fetches it again from
  the start (the partial file is replaced: storage writes a file whole or not at
  all). A node that starts finds a held import's job in place and leaves it alone.
- A single node has no one to take over from: its restart puts the jobs its previous
  process held back in the queue and claims them; it never looks at the queue
  otherwise, so an idle server does no work for imports.
- A fetch claimed `max_attempts` (3) times without ending (its node died each time)
  fails with `origin_unreachable` rather than being tried for ever.
- `close()` (SIGTERM) stops the fetches and puts their jobs back in the queue, where
  another node, or this one after its restart, takes them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from live.store.base import Store
from live.store.errors import StoreUnavailable
from live.store.held_jobs import cancel_and_wait, renewed, run_while_held
from live.store.models import Asset, ImportJob, asset_error
from live.store.times import utcnow
from live.uploads.imports import ImportFailed, OriginFetcher

log = logging.getLogger(__name__)

Fetched = Callable[[Asset, int], Awaitable[object]]
Failed = Callable[[Asset, dict[str, str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ImportLeases:
    lease_s: float = 15.0
    renew_s: float = 5.0
    # how often a cluster node looks for lapsed leases; None on a single node, which
    # has no one to take over from
    poll_s: float | None = 5.0
    max_attempts: int = 3

    @property
    def single_node(self) -> bool:
        return self.poll_s is None


class Importer:
    """This node's fetches, each held with a lease on its import job."""

    def __init__(
        self,
        store: Store,
        fetcher: OriginFetcher,
        *,
        node_id: str,
        leases: ImportLeases,
        on_fetched: Fetched,
        on_failed: Failed,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.node_id = node_id
        self.leases = leases
        self.on_fetched = on_fetched
        self.on_failed = on_failed
        self._tasks: dict[str, asyncio.Task[None]] = {}  # asset id -> its held fetch
        self._poller: asyncio.Task[None] | None = None

    @property
    def fetching(self) -> set[str]:
        """The assets this node fetches now."""
        return set(self._tasks)

    async def start(self) -> None:
        """Take up the queue: on a single node, the jobs of the previous process first."""
        if self.leases.single_node:
            requeued = await self.store.requeue_import_jobs()
            if requeued:
                log.info("%d import(s) left by the previous process: fetching again", requeued)
        await self.claim_due()
        if self.leases.poll_s is not None and self._poller is None:
            self._poller = asyncio.create_task(self._poll(self.leases.poll_s), name="imports")

    async def submit(self, asset: Asset) -> None:
        """Queue the fetch of the asset's origin (once: a queued or held import is left
        as it is) and start what this node may claim now."""
        await self.store.enqueue_import_job(asset.id)
        await self.claim_due()

    async def claim_due(self) -> None:
        """Claim every import that is queued or whose holder's lease lapsed."""
        while True:
            now = utcnow()
            job = await self.store.claim_import_job(
                self.node_id, now, now + timedelta(seconds=self.leases.lease_s)
            )
            if job is None:
                return
            # A job of an asset this node still works on (its own lease lapsed under a
            # busy loop, or the job ended and was queued again) waits for that work.
            previous = self._tasks.get(job.asset_id)
            task = asyncio.create_task(self._hold(job, previous), name=f"import {job.asset_id}")
            self._tasks[job.asset_id] = task
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for asset_id, held in list(self._tasks.items()):
            if held is task:
                del self._tasks[asset_id]

    async def _poll(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.claim_due()
            except StoreUnavailable as error:
                log.warning("import queue unreachable (%s); retrying", error)
            except Exception:
                log.exception("import queue: unexpected error; going on")

    # -- one held import ---------------------------------------------------------------

    async def _hold(self, job: ImportJob, previous: asyncio.Task[None] | None) -> None:
        asset_id = job.asset_id
        try:
            if previous is not None:
                await asyncio.wait({previous})
            asset = await self.store.get_asset(asset_id)
            if asset is None or not await self._wanted(asset):
                await self.store.remove_import_job(asset_id, self.node_id)
                return
            if job.attempts > self.leases.max_attempts:
                await self._give_up(asset, job.attempts - 1)
                return
            if job.attempts > 1:
                log.warning(
                    "import of %s: fetching again from the start on %s (attempt %d)",
                    asset_id, self.node_id, job.attempts,
                )  # fmt: skip
            else:
                log.info("import of %s: fetching on %s", asset_id, self.node_id)
            await self._fetch(asset)
        except asyncio.CancelledError:  # shutting down: back to the queue
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release_import_job(asset_id, self.node_id))
            raise
        except Exception:  # the store away, say: another claim starts it again
            log.exception("import of %s: unexpected error; putting it back", asset_id)
            with contextlib.suppress(Exception):
                await self.store.release_import_job(asset_id, self.node_id)

    async def _wanted(self, asset: Asset) -> bool:
        """Still to fetch: a pending import not handed on to processing yet (a node
        that died between the two leaves its job behind)."""
        if asset.source != "url" or asset.status != "pending":
            return False
        return await self.store.get_vod_job(asset.id) is None

    async def _fetch(self, asset: Asset) -> None:
        """Fetch while renewing the lease; stop if the lease is lost."""
        fetch = asyncio.create_task(self.fetcher.fetch(asset), name=f"fetch {asset.id}")
        if not await run_while_held(fetch, lambda: self._renew(asset.id), self.leases.renew_s):
            log.warning("import of %s: lease lost; another node fetches it", asset.id)
            return
        try:
            size = fetch.result()
        except ImportFailed as failure:
            log.info("import of %s failed: %s", asset.id, failure.message)
            if await self._still_held(asset.id):
                await self.on_failed(asset, failure.error())
        else:
            if await self._still_held(asset.id):
                await self.on_fetched(asset, size)
        await self.store.remove_import_job(asset.id, self.node_id)

    async def _renew(self, asset_id: str) -> bool:
        until = utcnow() + timedelta(seconds=self.leases.lease_s)
        return await renewed(
            self.store.renew_import_job(asset_id, self.node_id, until), f"import of {asset_id}"
        )

    async def _still_held(self, asset_id: str) -> bool:
        """Renewed once more before handing on: a node whose lease was taken over
        while its fetch ended leaves the outcome to the new holder."""
        until = utcnow() + timedelta(seconds=self.leases.lease_s)
        if await self.store.renew_import_job(asset_id, self.node_id, until):
            return True
        log.warning("import of %s: lease lost as the fetch ended; leaving it", asset_id)
        return False

    async def _give_up(self, asset: Asset, attempts: int) -> None:
        message = (
            f"The import was started {attempts} times and its node stopped each time"
            " before the file was fetched; giving up"
        )
        log.warning("import of %s: %s", asset.id, message)
        await self.on_failed(asset, asset_error("origin_unreachable", message))
        await self.store.remove_import_job(asset.id, self.node_id)

    # -- the end -------------------------------------------------------------------------

    async def wait(self) -> None:
        """Until every fetch running now has ended (tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop the fetches, their jobs back in the queue, and the HTTP client."""
        if self._poller is not None:
            await cancel_and_wait(self._poller)
            self._poller = None
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.fetcher.close()
