"""SQLite part of the store: the VOD job queue, on table `vod_jobs`
(`job_queue.py`)."""

from __future__ import annotations

from datetime import datetime

from live.store.aggregates.vod_jobs import VodJobStore
from live.store.models import VodJob
from live.store.sqlite.connection import SqliteConnection
from live.store.sqlite.job_queue import SqliteJobQueue


class SqliteVodJobs(SqliteConnection, VodJobStore):
    @property
    def _vod_queue(self) -> SqliteJobQueue:
        return SqliteJobQueue(self, "vod_jobs")

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
