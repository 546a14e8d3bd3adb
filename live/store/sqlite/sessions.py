"""SQLite part of the store: publish sessions."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from live.store.aggregates.sessions import SessionStore
from live.store.checks import check_fields, check_page
from live.store.models import SESSION_MUTABLE, Session
from live.store.sqlite.connection import SqliteConnection, assignments, encode, time_or_none
from live.store.times import from_storage


class SqliteSessions(SqliteConnection, SessionStore):
    async def create_session(self, session: Session) -> Session:
        await self._write(
            "INSERT INTO sessions (id, livestream_id, protocol, remote_addr, encoder,"
            " started_at, ended_at, end_reason, video, audio, bytes_in, peak_viewers,"
            " total_views, asset_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.id, session.livestream_id, session.protocol, session.remote_addr,
                session.encoder, encode(session.started_at), encode(session.ended_at),
                session.end_reason, encode(session.video), encode(session.audio),
                session.bytes_in, session.peak_viewers, session.total_views, session.asset_id,
            ),
        )  # fmt: skip
        return session

    async def update_session(self, session_id: str, **changes: Any) -> Session | None:
        check_fields(changes, SESSION_MUTABLE)
        if not changes:
            return await self.get_session(session_id)
        values = {k: encode(v) for k, v in changes.items()}
        row = await self._one(
            f"UPDATE sessions SET {assignments(values)} WHERE id = :_id RETURNING *",
            {**values, "_id": session_id},
        )
        return _session(row) if row else None

    async def end_session(
        self, session_id: str, ended_at: datetime, end_reason: str, **final_fields: Any
    ) -> Session | None:
        return await self.update_session(
            session_id, ended_at=ended_at, end_reason=end_reason, **final_fields
        )

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
