"""SQLite part of the store: publish sessions, with fencing.

A fenced write is two statements, each atomic: raise the stream's fence to ours
(refused if it is higher), then write the session only if ours is still the
highest at that instant. A newer owner slipping in between makes the second one
change nothing, which is reported as stale too.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from live.store.aggregates.sessions import SessionStore
from live.store.checks import check_fields, check_page
from live.store.errors import StaleFence
from live.store.models import SESSION_MUTABLE, Session
from live.store.sqlite.connection import SqliteConnection, assignments, encode, time_or_none
from live.store.times import from_storage

# True when :_fence may write for the stream in `:_stream` (a column or a parameter).
_FENCE_OK = (
    "(:_fence IS NULL OR :_fence >= COALESCE("
    "(SELECT fence FROM session_fences WHERE livestream_id = {stream}), :_fence))"
)
_COLUMNS = (
    "id", "livestream_id", "protocol", "remote_addr", "encoder", "started_at", "ended_at",
    "end_reason", "video", "audio", "bytes_in", "peak_viewers", "total_views", "asset_id",
)  # fmt: skip


class SqliteSessions(SqliteConnection, SessionStore):
    async def create_session(self, session: Session, *, fence: int | None = None) -> Session:
        await self._raise_fence(session.livestream_id, fence)
        values = {column: encode(getattr(session, column)) for column in _COLUMNS}
        placeholders = ", ".join(f":{column}" for column in _COLUMNS)
        try:
            written = await self._write(
                f"INSERT INTO sessions ({', '.join(_COLUMNS)}) SELECT {placeholders}"
                f" WHERE {_FENCE_OK.format(stream=':livestream_id')}",
                {**values, "_fence": fence},
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"{session.id} exists already") from None
        if not written:
            await self._stale(session.livestream_id, fence)
        return session

    async def update_session(
        self, session_id: str, *, fence: int | None = None, **changes: Any
    ) -> Session | None:
        check_fields(changes, SESSION_MUTABLE)
        if not changes:
            return await self.get_session(session_id)
        if fence is not None:
            row = await self._one("SELECT livestream_id FROM sessions WHERE id = ?", (session_id,))
            if row is None:
                return None
            await self._raise_fence(row[0], fence)
        values = {k: encode(v) for k, v in changes.items()}
        row = await self._one(
            f"UPDATE sessions SET {assignments(values)} WHERE id = :_id"
            f" AND {_FENCE_OK.format(stream='sessions.livestream_id')} RETURNING *",
            {**values, "_id": session_id, "_fence": fence},
        )
        if row is None and fence is not None:
            current = await self.get_session(session_id)
            if current is not None:
                await self._stale(current.livestream_id, fence)
        return _session(row) if row else None

    async def _raise_fence(self, livestream_id: str, fence: int | None) -> None:
        """Record `fence` as the stream's highest, or raise StaleFence if it is lower."""
        if fence is None:
            return
        raised = await self._write(
            "INSERT INTO session_fences (livestream_id, fence) VALUES (?, ?)"
            " ON CONFLICT (livestream_id) DO UPDATE SET fence = excluded.fence"
            " WHERE excluded.fence >= session_fences.fence",
            (livestream_id, int(fence)),
        )
        if not raised:
            await self._stale(livestream_id, fence)

    async def _stale(self, livestream_id: str, fence: int | None) -> None:
        row = await self._one(
            "SELECT fence FROM session_fences WHERE livestream_id = ?", (livestream_id,)
        )
        raise StaleFence(row[0] if row else 0, fence)

    async def get_session(self, session_id: str) -> Session | None:
        row = await self._one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return _session(row) if row else None

    async def list_sessions(
        self, livestream_id: str, page: int = 1, page_size: int = 20
    ) -> tuple[list[Session], int]:
        check_page(page, page_size)
        total = (
            await self._one(
                "SELECT COUNT(*) FROM sessions WHERE livestream_id = ?", (livestream_id,)
            )
        )[0]
        rows = await self._all(
            "SELECT * FROM sessions WHERE livestream_id = ?"
            " ORDER BY started_at DESC, seq DESC LIMIT ? OFFSET ?",
            (livestream_id, page_size, (page - 1) * page_size),
        )
        return [_session(r) for r in rows], total

    async def list_open_sessions(self) -> list[Session]:
        rows = await self._all("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY seq")
        return [_session(r) for r in rows]


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        livestream_id=row["livestream_id"],
        protocol=row["protocol"],
        remote_addr=row["remote_addr"],
        encoder=row["encoder"],
        started_at=from_storage(row["started_at"]),
        ended_at=time_or_none(row["ended_at"]),
        end_reason=row["end_reason"],
        video=json.loads(row["video"]) if row["video"] else None,
        audio=json.loads(row["audio"]) if row["audio"] else None,
        bytes_in=row["bytes_in"],
        peak_viewers=row["peak_viewers"],
        total_views=row["total_views"],
        asset_id=row["asset_id"],
    )
