"""SQLite part of the store: assets (recordings)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from live.store.aggregates.assets import AssetStore
from live.store.checks import check_asset_statuses, check_fields, check_page
from live.store.models import ASSET_MUTABLE, Asset, AssetStatus
from live.store.sqlite.connection import SqliteConnection, assignments, encode, time_or_none
from live.store.times import from_storage, to_storage


class SqliteAssets(SqliteConnection, AssetStore):
    async def create_asset(self, asset: Asset) -> Asset:
        try:
            await self._insert_asset(asset)
        except sqlite3.IntegrityError:
            raise ValueError(f"{asset.id} exists already") from None
        return asset

    async def _insert_asset(self, asset: Asset) -> None:
        await self._write(
            "INSERT INTO assets (id, livestream_id, session_id, status, error, duration_s,"
            " size_bytes, has_poster, created_at, ready_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                asset.id, asset.livestream_id, asset.session_id, asset.status, asset.error,
                asset.duration_s, asset.size_bytes, int(asset.has_poster),
                encode(asset.created_at), encode(asset.ready_at),
            ),
        )  # fmt: skip

    async def get_asset(self, asset_id: str) -> Asset | None:
        row = await self._one("SELECT * FROM assets WHERE id = ?", (asset_id,))
        return _asset(row) if row else None

    async def list_assets(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        livestream_id: str | None = None,
        statuses: tuple[AssetStatus, ...] | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list[Asset], int]:
        check_page(page, page_size)
        conditions, params = ["1"], {}
        if livestream_id is not None:
            conditions.append("livestream_id = :livestream_id")
            params["livestream_id"] = livestream_id
        if statuses is not None:
            check_asset_statuses(statuses)
            names = [f":status{i}" for i in range(len(statuses))]
            conditions.append(f"status IN ({', '.join(names) or 'NULL'})")
            params.update({name[1:]: value for name, value in zip(names, statuses, strict=True)})
        if created_before is not None:
            conditions.append("created_at < :created_before")
            params["created_before"] = to_storage(created_before)
        where = " AND ".join(conditions)
        total = (await self._one(f"SELECT COUNT(*) FROM assets WHERE {where}", params))[0]
        rows = await self._all(
            f"SELECT * FROM assets WHERE {where}"
            " ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
            {**params, "limit": page_size, "offset": (page - 1) * page_size},
        )
        return [_asset(r) for r in rows], total

    async def update_asset(self, asset_id: str, **changes: Any) -> Asset | None:
        check_fields(changes, ASSET_MUTABLE)
        if "status" in changes:
            check_asset_statuses([changes["status"]])
        if not changes:
            return await self.get_asset(asset_id)
        values = {k: encode(v) for k, v in changes.items()}
        row = await self._one(
            f"UPDATE assets SET {assignments(values)} WHERE id = :_id RETURNING *",
            {**values, "_id": asset_id},
        )
        return _asset(row) if row else None

    async def delete_asset(self, asset_id: str) -> bool:
        # a trigger unlinks the session that named it (migration 4)
        return await self._write("DELETE FROM assets WHERE id = ?", (asset_id,)) > 0


def _asset(row: sqlite3.Row) -> Asset:
    return Asset(
        id=row["id"],
        livestream_id=row["livestream_id"],
        session_id=row["session_id"],
        status=row["status"],
        error=row["error"],
        duration_s=row["duration_s"],
        size_bytes=row["size_bytes"],
        has_poster=bool(row["has_poster"]),
        created_at=from_storage(row["created_at"]),
        ready_at=time_or_none(row["ready_at"]),
    )
