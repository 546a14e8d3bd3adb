"""Redis part of the store: the import job queue, shared by every node of a cluster,
under `imp:` (`job_queue.py`)."""

from __future__ import annotations

from datetime import datetime

from live.store.aggregates.import_jobs import ImportJobStore
from live.store.models import ImportJob
from live.store.redis.connection import RedisConnection
from live.store.redis.job_queue import RedisJobQueue


class RedisImportJobs(RedisConnection, ImportJobStore):
    @property
    def _import_queue(self) -> RedisJobQueue:
        return RedisJobQueue(self, "imp:")

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
