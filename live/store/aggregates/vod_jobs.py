"""VOD jobs: the queue of uploads and imports waiting to be processed, and the
leases of the ones being processed.

A job is claimed with a lease (the node's id and an expiry) in one atomic write, so
two workers, on one node or on two, never take the same job; the holder renews the
lease while it works. A job whose lease has lapsed (its node died, or hung) is
claimed again by whichever worker asks first, before any queued job: it has waited
longest. A finished job is removed; the asset's record says how it ended.
"""

from __future__ import annotations

import abc
from datetime import datetime

from live.store.aggregates.job_queue import JobQueue
from live.store.models import VodJob


class VodJobStore(abc.ABC):
    """The VOD job queue, shared by every node of a cluster."""

    @abc.abstractmethod
    async def enqueue_vod_job(self, asset_id: str) -> VodJob:
        """Queue the asset's processing at the back. An asset that has a job already
        keeps it as it is (a repeated submit neither duplicates nor resets it)."""

    @abc.abstractmethod
    async def claim_vod_job(
        self, node_id: str, now: datetime, lease_until: datetime
    ) -> VodJob | None:
        """The next job for `node_id`, leased until `lease_until`, its attempts counted:
        a running job whose lease ended by `now` first, else the oldest queued one.
        None when there is neither."""

    @abc.abstractmethod
    async def renew_vod_job(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        """Extend the lease of a job `node_id` holds; False when it holds it no longer
        (taken over after a lapse, or removed because the asset was deleted)."""

    @abc.abstractmethod
    async def release_vod_job(self, asset_id: str, node_id: str) -> bool:
        """Put a job `node_id` holds back in the queue, at its place by submission
        (ahead of later ones), for another worker to take at once (a node that
        shuts down); False if it holds it no longer."""

    @abc.abstractmethod
    async def requeue_vod_jobs(self) -> int:
        """Every running job back to the queue, whoever held it: a single node's
        restart, where no other worker can be alive. How many."""

    @abc.abstractmethod
    async def remove_vod_job(self, asset_id: str, node_id: str | None = None) -> bool:
        """Remove the job (it ended). With `node_id`, only if that node holds it, so a
        worker that lost its lease cannot remove the new holder's job."""

    @abc.abstractmethod
    async def get_vod_job(self, asset_id: str) -> VodJob | None: ...

    @abc.abstractmethod
    async def list_vod_jobs(self) -> list[VodJob]:
        """Every job, running ones first, then the queue in the order it is served."""


class QueuedVodJobs(VodJobStore):
    """The VOD jobs on a backend's job queue, which does all the work: each backend
    only says which queue (its own table or key namespace)."""

    @property
    @abc.abstractmethod
    def _vod_queue(self) -> JobQueue: ...

    async def enqueue_vod_job(self, asset_id: str) -> VodJob:
        return await self._vod_queue.enqueue(asset_id)

    async def claim_vod_job(
        self, node_id: str, now: datetime, lease_until: datetime
    ) -> VodJob | None:
        return await self._vod_queue.claim(node_id, now, lease_until)

    async def renew_vod_job(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        return await self._vod_queue.renew(asset_id, node_id, lease_until)

    async def release_vod_job(self, asset_id: str, node_id: str) -> bool:
        return await self._vod_queue.release(asset_id, node_id)

    async def requeue_vod_jobs(self) -> int:
        return await self._vod_queue.requeue()

    async def remove_vod_job(self, asset_id: str, node_id: str | None = None) -> bool:
        return await self._vod_queue.remove(asset_id, node_id)

    async def get_vod_job(self, asset_id: str) -> VodJob | None:
        return await self._vod_queue.get(asset_id)

    async def list_vod_jobs(self) -> list[VodJob]:
        return await self._vod_queue.list()
