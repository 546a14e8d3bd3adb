"""SQLite part of the store: assets (recordings, uploads, imports)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime
from typing import Any

from live.store.aggregates.assets import AssetStore
from live.store.checks import check_asset_changes, check_asset_statuses, check_page
from live.store.models import Asset, AssetStatus
from live.store.sqlite.connection import SqliteConnection, assignments, encode, time_or_none
from live.store.times import to_storage


class SqliteAssets(SqliteConnection, AssetStore):
    async def create_asset(self, asset: Asset) -> Asset:
        try:
            await self._insert_asset(asset)
        except sqlite3.IntegrityError:
            raise ValueError(f"{asset.id} exists already") from None
        return asset

    async def _insert_asset(self, asset: Asset) -> None:
        values = {name: encode(getattr(asset, name)) for name in _COLUMNS}
        columns = ", ".join(_COLUMNS)
        names = ", ".join(f":{name}" for name in _COLUMNS)
        await self._write(f"INSERT INTO assets ({columns}) VALUES ({names})", values)

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
        check_asset_changes(changes)
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


# Every field of `Asset` is a column of the same name.
_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Asset))
_JSON = ("error", "renditions", "original")
_TIMES = ("created_at", "ready_at", "upload_expires_at")


def _asset(row: sqlite3.Row) -> Asset:
    values: dict[str, Any] = {name: row[name] for name in _COLUMNS}
    for name in _JSON:
        values[name] = json.loads(values[name]) if values[name] is not None else None
    for name in _TIMES:
        values[name] = time_or_none(values[name])
    values["has_poster"] = bool(values["has_poster"])
    return Asset(**values)
