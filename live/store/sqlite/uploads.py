"""SQLite part of the store: uploads in progress."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime
from typing import Any

from live.store.aggregates.uploads import UploadStore
from live.store.models import Upload
from live.store.sqlite.connection import SqliteConnection, encode, time_or_none
from live.store.times import from_storage, to_storage

# Every field of `Upload` is a column of the same name ("offset" quoted: a keyword).
_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Upload))
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)
_PLACES = ", ".join(f":{name}" for name in _FIELDS)


class SqliteUploads(SqliteConnection, UploadStore):
    async def create_upload(self, upload: Upload) -> Upload | None:
        if await self.get_upload(upload.id) is not None:
            raise ValueError(f"{upload.id} exists already")
        values = {name: encode(getattr(upload, name)) for name in _FIELDS}
        for _attempt in range(3):  # another creation for the asset may slip in between
            row = await self._one(
                "DELETE FROM uploads WHERE asset_id = ? RETURNING *", (upload.asset_id,)
            )
            try:
                await self._write(f"INSERT INTO uploads ({_COLUMNS}) VALUES ({_PLACES})", values)
            except sqlite3.IntegrityError:
                if await self.get_upload(upload.id) is not None:
                    raise ValueError(f"{upload.id} exists already") from None
                continue
            return _upload(row) if row else None
        raise RuntimeError(f"could not create an upload for {upload.asset_id}")

    async def get_upload(self, upload_id: str) -> Upload | None:
        row = await self._one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        return _upload(row) if row else None

    async def claim_upload(
        self, upload_id: str, holder: str, until: datetime, now: datetime
    ) -> Upload | None:
        row = await self._one(
            "UPDATE uploads SET holder = :holder, held_until = :until WHERE id = :id AND"
            " (holder IS NULL OR holder = :holder OR held_until < :now) RETURNING *",
            {"holder": holder, "until": to_storage(until), "id": upload_id,
             "now": to_storage(now)},
        )  # fmt: skip
        return _upload(row) if row else await self.get_upload(upload_id)

    async def save_upload(
        self, upload_id: str, holder: str, *, offset: int, write: dict[str, Any], until: datetime
    ) -> Upload | None:
        row = await self._one(
            'UPDATE uploads SET "offset" = :offset, write = :write, held_until = :until'
            " WHERE id = :id AND holder = :holder RETURNING *",
            {"offset": offset, "write": encode(write), "until": to_storage(until),
             "id": upload_id, "holder": holder},
        )  # fmt: skip
        return _upload(row) if row else None

    async def release_upload(self, upload_id: str, holder: str) -> None:
        await self._write(
            "UPDATE uploads SET holder = NULL, held_until = NULL WHERE id = ? AND holder = ?",
            (upload_id, holder),
        )

    async def delete_upload(self, upload_id: str) -> Upload | None:
        row = await self._one("DELETE FROM uploads WHERE id = ? RETURNING *", (upload_id,))
        return _upload(row) if row else None

    async def list_expired_uploads(self, now: datetime, limit: int = 100) -> list[Upload]:
        rows = await self._all(
            "SELECT * FROM uploads WHERE expires_at < ? ORDER BY expires_at, seq LIMIT ?",
            (to_storage(now), limit),
        )
        return [_upload(row) for row in rows]


def _upload(row: sqlite3.Row) -> Upload:
    values: dict[str, Any] = {name: row[name] for name in _FIELDS}
    values["metadata"] = json.loads(values["metadata"])
    values["write"] = json.loads(values["write"])
    values["held_until"] = time_or_none(values["held_until"])
    values["expires_at"] = from_storage(values["expires_at"])
    values["created_at"] = from_storage(values["created_at"])
    return Upload(**values)
