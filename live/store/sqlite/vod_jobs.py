"""SQLite part of the store: the VOD job queue. Each claim is one UPDATE of the row
its subquery picks, so two connections racing never take the same job."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from live.store.aggregates.vod_jobs import VodJobStore
from live.store.models import VodJob
from live.store.sqlite.connection import SqliteConnection, time_or_none
from live.store.times import from_storage, to_storage, utcnow


class SqliteVodJobs(SqliteConnection, VodJobStore):
    async def enqueue_vod_job(self, asset_id: str) -> VodJob:
        await self._write(
            "INSERT INTO vod_jobs (asset_id, state, created_at) VALUES (?, 'queued', ?)"
            " ON CONFLICT (asset_id) DO NOTHING",
            (asset_id, to_storage(utcnow())),
        )
        job = await self.get_vod_job(asset_id)
        assert job is not None
        return job

    async def claim_vod_job(
        self, node_id: str, now: datetime, lease_until: datetime
    ) -> VodJob | None:
        row = await self._one(
            "UPDATE vod_jobs SET state = 'running', node_id = :node, lease_until = :lease,"
            " attempts = attempts + 1 WHERE seq = ("
            " SELECT seq FROM vod_jobs WHERE state = 'queued'"
            " OR (state = 'running' AND lease_until <= :now)"
            " ORDER BY state = 'queued', seq LIMIT 1) RETURNING *",
            {"node": node_id, "lease": to_storage(lease_until), "now": to_storage(now)},
        )
        return _job(row) if row else None

    async def renew_vod_job(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        changed = await self._write(
            "UPDATE vod_jobs SET lease_until = ? WHERE asset_id = ? AND state = 'running'"
            " AND node_id = ?",
            (to_storage(lease_until), asset_id, node_id),
        )
        return changed > 0

    async def release_vod_job(self, asset_id: str, node_id: str) -> bool:
        changed = await self._write(
            "UPDATE vod_jobs SET state = 'queued', node_id = NULL, lease_until = NULL"
            " WHERE asset_id = ? AND state = 'running' AND node_id = ?",
            (asset_id, node_id),
        )
        return changed > 0

    async def requeue_vod_jobs(self) -> int:
        return await self._write(
            "UPDATE vod_jobs SET state = 'queued', node_id = NULL, lease_until = NULL"
            " WHERE state = 'running'"
        )

    async def remove_vod_job(self, asset_id: str, node_id: str | None = None) -> bool:
        if node_id is None:
            return await self._write("DELETE FROM vod_jobs WHERE asset_id = ?", (asset_id,)) > 0
        changed = await self._write(
            "DELETE FROM vod_jobs WHERE asset_id = ? AND state = 'running' AND node_id = ?",
            (asset_id, node_id),
        )
        return changed > 0

    async def get_vod_job(self, asset_id: str) -> VodJob | None:
        row = await self._one("SELECT * FROM vod_jobs WHERE asset_id = ?", (asset_id,))
        return _job(row) if row else None

    async def list_vod_jobs(self) -> list[VodJob]:
        rows = await self._all("SELECT * FROM vod_jobs ORDER BY state = 'queued', seq")
        return [_job(row) for row in rows]


def _job(row: sqlite3.Row) -> VodJob:
    return VodJob(
        asset_id=row["asset_id"],
        state=row["state"],
        node_id=row["node_id"],
        lease_until=time_or_none(row["lease_until"]),
        attempts=row["attempts"],
        created_at=from_storage(row["created_at"]),
    )
