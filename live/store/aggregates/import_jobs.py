"""Import jobs: the imports by URL waiting for a node to fetch them, and the leases
of the ones being fetched, so that one live node at a time fetches an asset's
origin and a dead node's fetch is taken over.

The same rules as the VOD job queue (`vod_jobs.py`), in a queue of its own: a fetch
waits on the network, not on the cores, so it must not take a transcode's place;
and an import hands on to the VOD queue when its file is stored. A job is claimed
with a lease in one atomic write; its holder renews it while it fetches; a lapsed
lease (its node died) is claimed again before any queued job, its attempts counted.
A job is removed once its fetch ended, either way (the asset's record says how).
"""

from __future__ import annotations

import abc
from datetime import datetime

from live.store.aggregates.job_queue import JobQueue
from live.store.models import ImportJob


class ImportJobStore(abc.ABC):
    """The import job queue, shared by every node of a cluster."""

    @abc.abstractmethod
    async def enqueue_import_job(self, asset_id: str) -> ImportJob:
        """Queue the asset's fetch at the back. An asset that has a job already keeps
        it as it is: a node that starts and finds the import pending does not reset
        the live node's claim."""

    @abc.abstractmethod
    async def claim_import_job(
        self, node_id: str, now: datetime, lease_until: datetime
    ) -> ImportJob | None:
        """The next fetch for `node_id`, leased until `lease_until`, its attempts
        counted: one whose lease ended by `now` first, else the oldest queued one."""

    @abc.abstractmethod
    async def renew_import_job(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        """Extend the lease of a job `node_id` holds; False when it holds it no longer."""

    @abc.abstractmethod
    async def release_import_job(self, asset_id: str, node_id: str) -> bool:
        """Put a job `node_id` holds back in the queue (a node that shuts down)."""

    @abc.abstractmethod
    async def requeue_import_jobs(self) -> int:
        """Every running job back to the queue: a single node's restart. How many."""

    @abc.abstractmethod
    async def remove_import_job(self, asset_id: str, node_id: str | None = None) -> bool:
        """Remove the job (its fetch ended). With `node_id`, only if that node holds it."""

    @abc.abstractmethod
    async def get_import_job(self, asset_id: str) -> ImportJob | None: ...


class QueuedImportJobs(ImportJobStore):
    """The import jobs on a backend's job queue, which does all the work: each
    backend only says which queue (its own table or key namespace)."""

    @property
    @abc.abstractmethod
    def _import_queue(self) -> JobQueue: ...

    async def enqueue_import_job(self, asset_id: str) -> ImportJob:
        return await self._import_queue.enqueue(asset_id)

    async def claim_import_job(
        self, node_id: str, now: datetime, lease_until: datetime
    ) -> ImportJob | None:
        return await self._import_queue.claim(node_id, now, lease_until)

    async def renew_import_job(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        return await self._import_queue.renew(asset_id, node_id, lease_until)

    async def release_import_job(self, asset_id: str, node_id: str) -> bool:
        return await self._import_queue.release(asset_id, node_id)

    async def requeue_import_jobs(self) -> int:
        return await self._import_queue.requeue()

    async def remove_import_job(self, asset_id: str, node_id: str | None = None) -> bool:
        return await self._import_queue.remove(asset_id, node_id)

    async def get_import_job(self, asset_id: str) -> ImportJob | None:
        return await self._import_queue.get(asset_id)
