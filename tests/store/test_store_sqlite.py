"""What only the SQLite store promises: one file, WAL, versioned schema, no
plaintext API keys on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from live.store import SqliteStore
from live.store.sqlite import DB_FILENAME
from live.store.sqlite_schema import SCHEMA_VERSION


async def test_opens_a_file_in_the_data_dir_in_wal_mode(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    await store.close()
    db = tmp_path / DB_FILENAME
    assert db.exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_reopen_keeps_data_and_does_not_remigrate(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "live.db"
    store = await SqliteStore.open(path)
    ls = await store.create_livestream(name="kept")
    _, plaintext = await store.create_api_key("k", "admin")
    await store.close()

    store = await SqliteStore.open(path)
    try:
        assert await store.get_livestream(ls.id) == ls
        assert await store.verify_api_key(plaintext) is not None
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


async def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    await store.close()
    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteStore.open(tmp_path)


async def test_api_key_plaintext_never_reaches_disk(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    key, plaintext = await store.create_api_key("secret", "admin")
    await store.ensure_api_key("lk_from-env-0123456789", "env", "admin")
    assert await store.verify_api_key(plaintext) is not None
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    await store.close()
    raw += (tmp_path / DB_FILENAME).read_bytes()  # after the checkpoint on close, too
    assert plaintext.encode() not in raw
    assert plaintext[3:].encode() not in raw
    assert b"lk_from-env-0123456789" not in raw
    assert key.key_hash.encode() in raw
    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
    assert all(plaintext not in str(row) for row in rows)
