"""The connection every part of `SqliteStore` shares, the schema migration, and the
conversions between Python values and SQLite columns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import aiosqlite

from live.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from live.store.times import from_storage, to_storage


class SqliteConnection:
    """One aiosqlite connection (a worker thread) in autocommit mode: every write
    is a single statement, so it is atomic without explicit transactions."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._db = conn

    async def close(self) -> None:
        await self._db.close()

    async def _all(self, sql: str, params: Mapping[str, Any] | Iterable[Any] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, params))

    async def _one(self, sql: str, params: Mapping[str, Any] | Iterable[Any] = ()) -> Any:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Mapping[str, Any] | Iterable[Any] = ()) -> int:
        async with self._db.execute(sql, params) as cursor:
            return cursor.rowcount


async def migrate(conn: aiosqlite.Connection) -> None:
    """Apply the migrations this file lacks; refuse a file from a newer version."""
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
    current = (row[0] if row else None) or 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this server ({SCHEMA_VERSION})"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[version - 1]
        try:
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"DELETE FROM schema_version; INSERT INTO schema_version VALUES ({version});\n"
                "COMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise


def encode(value: Any) -> Any:
    """Python value -> SQLite value."""
    if isinstance(value, datetime):
        return to_storage(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def time_or_none(text: str | None) -> datetime | None:
    return from_storage(text) if text else None


def assignments(values: Mapping[str, Any]) -> str:
    """`col = :col, ...` for an UPDATE; column names come from the allow-lists in
    `models`, never from the caller."""
    return ", ".join(f"{column} = :{column}" for column in values)
