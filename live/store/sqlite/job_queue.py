"""A queue of jobs, one per asset, claimed with a lease (`aggregates/vod_jobs.py`
says how), on one SQLite table: the VOD jobs' and the imports' share this code,
each on its own table of the same shape. Each claim is one UPDATE of the row its
subquery picks, so two connections racing never take the same job."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from live.store.models import VodJob
from live.store.sqlite.connection import SqliteConnection, time_or_none
from live.store.times import from_storage, to_storage, utcnow


class SqliteJobQueue:
    """The queue on `table` (a constant of the code, never input)."""

    def __init__(self, db: SqliteConnection, table: str) -> None:
        self.db = db
        self.table = table

    async def enqueue(self, asset_id: str) -> VodJob:
        # One statement: the job (new or existing) is answered by the write itself, so
        # a holder removing it meanwhile cannot leave the answer empty.
        row = await self.db._one(
            f"INSERT INTO {self.table} (asset_id, state, created_at) VALUES (?, 'queued', ?)"
            " ON CONFLICT (asset_id) DO UPDATE SET asset_id = excluded.asset_id RETURNING *",
            (asset_id, to_storage(utcnow())),
        )
        return _job(row)

    async def claim(self, node_id: str, now: datetime, lease_until: datetime) -> VodJob | None:
        row = await self.db._one(
            f"UPDATE {self.table} SET state = 'running', node_id = :node, lease_until = :lease,"
            " attempts = attempts + 1 WHERE seq = ("
            f" SELECT seq FROM {self.table} WHERE state = 'queued'"
            " OR (state = 'running' AND lease_until <= :now)"
            " ORDER BY state = 'queued', seq LIMIT 1) RETURNING *",
            {"node": node_id, "lease": to_storage(lease_until), "now": to_storage(now)},
        )
        return _job(row) if row else None

    async def renew(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        changed = await self.db._write(
            f"UPDATE {self.table} SET lease_until = ? WHERE asset_id = ? AND state = 'running'"
            " AND node_id = ?",
            (to_storage(lease_until), asset_id, node_id),
        )
        return changed > 0

    async def release(self, asset_id: str, node_id: str) -> bool:
        changed = await self.db._write(
            f"UPDATE {self.table} SET state = 'queued', node_id = NULL, lease_until = NULL"
            " WHERE asset_id = ? AND state = 'running' AND node_id = ?",
            (asset_id, node_id),
        )
        return changed > 0

    async def requeue(self) -> int:
        return await self.db._write(
            f"UPDATE {self.table} SET state = 'queued', node_id = NULL, lease_until = NULL"
            " WHERE state = 'running'"
        )

    async def remove(self, asset_id: str, node_id: str | None = None) -> bool:
        if node_id is None:
            sql = f"DELETE FROM {self.table} WHERE asset_id = ?"
            return await self.db._write(sql, (asset_id,)) > 0
        changed = await self.db._write(
            f"DELETE FROM {self.table} WHERE asset_id = ? AND state = 'running' AND node_id = ?",
            (asset_id, node_id),
        )
        return changed > 0

    async def get(self, asset_id: str) -> VodJob | None:
        row = await self.db._one(f"SELECT * FROM {self.table} WHERE asset_id = ?", (asset_id,))
        return _job(row) if row else None

    async def list(self) -> list[VodJob]:
        rows = await self.db._all(f"SELECT * FROM {self.table} ORDER BY state = 'queued', seq")
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
