"""`SqliteStore`: the embedded default, one file under the data dir, made of one part
per aggregate over a shared connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from live.store.base import Store
from live.store.ids import hash_stream_key
from live.store.sqlite.api_keys import SqliteApiKeys
from live.store.sqlite.assets import SqliteAssets
from live.store.sqlite.connection import migrate
from live.store.sqlite.idempotency import SqliteIdempotency
from live.store.sqlite.import_jobs import SqliteImportJobs
from live.store.sqlite.livestreams import SqliteLivestreams
from live.store.sqlite.sessions import SqliteSessions
from live.store.sqlite.uploads import SqliteUploads
from live.store.sqlite.vod_jobs import SqliteVodJobs
from live.store.sqlite.webhooks import SqliteWebhooks

DB_FILENAME = "live.sqlite3"


class SqliteStore(
    SqliteLivestreams,
    SqliteApiKeys,
    SqliteSessions,
    SqliteAssets,
    SqliteWebhooks,
    SqliteIdempotency,
    SqliteVodJobs,
    SqliteImportJobs,
    SqliteUploads,
    Store,
):
    """`Store` on one SQLite file. Create with `await SqliteStore.open(path)`.

    WAL lets `live keys create` on the command line write while the server runs."""

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) the database at `path`, a file or a data dir,
        and bring its schema up to date."""
        path = Path(path)
        if path.is_dir():
            path = path / DB_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.create_function("stream_key_digest", 1, hash_stream_key, deterministic=True)
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)
