"""SQLite part of the store: livestreams, stream keys and bans."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from live.store.aggregates.livestreams import LivestreamStore
from live.store.checks import check_fields, check_page, check_status
from live.store.ids import hash_stream_key, new_stream_key, same_secret
from live.store.models import LIVESTREAM_SETTINGS, Livestream, Status
from live.store.sqlite.connection import SqliteConnection, assignments, encode, time_or_none
from live.store.times import from_storage, to_storage, utcnow

# SQL for "banned now", "live now" and "idle now", with :now bound to storage time.
_BANNED = "(banned_at IS NOT NULL AND (ban_until IS NULL OR ban_until > :now))"
_STATUS_WHERE: dict[str, str] = {
    "banned": _BANNED,
    "live": f"(NOT {_BANNED} AND live = 1)",
    "idle": f"(NOT {_BANNED} AND live = 0)",
}


class SqliteLivestreams(SqliteConnection, LivestreamStore):
    async def _insert_livestream(self, ls: Livestream) -> None:
        await self._write(
            "INSERT INTO livestreams (id, name, stream_key, stream_key_hash, playback_id,"
            " record, latency_mode, transcode, reconnect_window_s, max_duration_s,"
            " srt_passphrase, live, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                ls.id, ls.name, ls.stream_key, hash_stream_key(ls.stream_key), ls.playback_id,
                int(ls.record), ls.latency_mode, ls.transcode, ls.reconnect_window_s,
                ls.max_duration_s, ls.srt_passphrase, to_storage(ls.created_at),
                to_storage(ls.updated_at),
            ),
        )  # fmt: skip

    async def get_livestream(self, livestream_id: str) -> Livestream | None:
        row = await self._one("SELECT * FROM livestreams WHERE id = ?", (livestream_id,))
        return _livestream(row) if row else None

    async def get_livestream_by_stream_key(self, stream_key: str) -> Livestream | None:
        row = await self._one(
            "SELECT * FROM livestreams WHERE stream_key_hash = ?", (hash_stream_key(stream_key),)
        )
        if row is None or not same_secret(row["stream_key"], stream_key):
            return None
        return _livestream(row)

    async def get_livestream_by_playback_id(self, playback_id: str) -> Livestream | None:
        row = await self._one("SELECT * FROM livestreams WHERE playback_id = ?", (playback_id,))
        return _livestream(row) if row else None

    async def list_livestreams(
        self,
        page: int = 1,
        page_size: int = 20,
        status: Status | None = None,
        *,
        now: datetime | None = None,
    ) -> tuple[list[Livestream], int]:
        check_page(page, page_size)
        check_status(status)
        where = _STATUS_WHERE[status] if status else "1"
        params = {
            "now": to_storage(now or utcnow()),
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        total = (await self._one(f"SELECT COUNT(*) FROM livestreams WHERE {where}", params))[0]
        rows = await self._all(
            f"SELECT * FROM livestreams WHERE {where}"
            " ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
            params,
        )
        return [_livestream(r) for r in rows], total

    async def update_livestream(self, livestream_id: str, **changes: Any) -> Livestream | None:
        check_fields(changes, LIVESTREAM_SETTINGS)
        if not changes:
            return await self.get_livestream(livestream_id)
        values = {k: encode(v) for k, v in changes.items()}
        values["updated_at"] = to_storage(utcnow())
        return await self._update_livestream(livestream_id, values)

    async def _update_livestream(
        self, livestream_id: str, values: dict[str, Any]
    ) -> Livestream | None:
        row = await self._one(
            f"UPDATE livestreams SET {assignments(values)} WHERE id = :_id RETURNING *",
            {**values, "_id": livestream_id},
        )
        return _livestream(row) if row else None

    async def delete_livestream(self, livestream_id: str) -> bool:
        return await self._write("DELETE FROM livestreams WHERE id = ?", (livestream_id,)) > 0

    async def set_live(self, livestream_id: str, live: bool) -> bool:
        count = await self._write(
            "UPDATE livestreams SET live = ? WHERE id = ?", (int(live), livestream_id)
        )
        return count > 0

    async def reset_stream_key(self, livestream_id: str) -> str | None:
        key = new_stream_key()
        updated = await self._update_livestream(
            livestream_id,
            {
                "stream_key": key,
                "stream_key_hash": hash_stream_key(key),
                "updated_at": to_storage(utcnow()),
            },
        )
        return key if updated else None

    async def ban(
        self, livestream_id: str, reason: str | None = None, until: datetime | None = None
    ) -> Livestream | None:
        now = to_storage(utcnow())
        return await self._update_livestream(
            livestream_id,
            {
                "ban_reason": reason,
                "banned_at": now,
                "ban_until": encode(until),
                "updated_at": now,
            },
        )

    async def unban(self, livestream_id: str) -> Livestream | None:
        return await self._update_livestream(
            livestream_id,
            {
                "ban_reason": None,
                "banned_at": None,
                "ban_until": None,
                "updated_at": to_storage(utcnow()),
            },
        )

    async def lift_expired_bans(self, now: datetime | None = None) -> list[Livestream]:
        stamp = to_storage(now or utcnow())
        async with self._db.execute(
            "UPDATE livestreams SET ban_reason = NULL, banned_at = NULL, ban_until = NULL,"
            " updated_at = :now WHERE banned_at IS NOT NULL AND ban_until IS NOT NULL"
            " AND ban_until <= :now RETURNING *",
            {"now": stamp},
        ) as cursor:
            rows = await cursor.fetchall()
        return [_livestream(row) for row in rows]

    async def next_ban_expiry(self) -> datetime | None:
        row = await self._one(
            "SELECT MIN(ban_until) FROM livestreams"
            " WHERE banned_at IS NOT NULL AND ban_until IS NOT NULL"
        )
        return time_or_none(row[0]) if row else None


def _livestream(row: sqlite3.Row) -> Livestream:
    return Livestream(
        id=row["id"],
        name=row["name"],
        stream_key=row["stream_key"],
        playback_id=row["playback_id"],
        record=bool(row["record"]),
        latency_mode=row["latency_mode"],
        transcode=row["transcode"],
        reconnect_window_s=row["reconnect_window_s"],
        max_duration_s=row["max_duration_s"],
        srt_passphrase=row["srt_passphrase"],
        live=bool(row["live"]),
        ban_reason=row["ban_reason"],
        banned_at=time_or_none(row["banned_at"]),
        ban_until=time_or_none(row["ban_until"]),
        created_at=from_storage(row["created_at"]),
        updated_at=from_storage(row["updated_at"]),
    )
