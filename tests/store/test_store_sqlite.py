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


async def test_migration_6_keeps_old_recordings_and_turns_their_error_into_an_object(
    tmp_path: Path,
) -> None:
    """A data dir from before uploads: its assets survive the table's rebuild, an old
    error string becomes a `processing_failed` object, and deleting an asset still
    unlinks its session (the trigger is rebuilt with the table)."""
    from live.store.sqlite_schema import MIGRATIONS

    path = tmp_path / DB_FILENAME
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript("\n".join(MIGRATIONS[:5]))
        conn.execute("INSERT INTO schema_version VALUES (5)")
        conn.execute(
            "INSERT INTO assets (id, livestream_id, session_id, status, error, duration_s,"
            " size_bytes, has_poster, created_at) VALUES"
            " ('ast_old', 'ls_1', 'ses_1', 'failed', 'the disk is full', 1.5, 10, 0,"
            " '2026-01-01T00:00:00.000000Z'),"
            " ('ast_ok', 'ls_1', 'ses_2', 'ready', NULL, 2.5, 20, 1,"
            " '2026-01-02T00:00:00.000000Z')"
        )
        conn.execute(
            "INSERT INTO sessions (id, livestream_id, protocol, remote_addr, started_at,"
            " asset_id) VALUES ('ses_2', 'ls_1', 'rtmp', '127.0.0.1',"
            " '2026-01-02T00:00:00.000000Z', 'ast_ok')"
        )
    store = await SqliteStore.open(tmp_path)
    try:
        old = await store.get_asset("ast_old")
        assert old is not None and old.source == "recording" and old.livestream_id == "ls_1"
        assert old.error == {"code": "processing_failed", "message": "the disk is full"}
        ok = await store.get_asset("ast_ok")
        assert ok is not None and ok.error is None and ok.has_poster and ok.duration_s == 2.5
        assert ok.renditions == [] and ok.transcode == "ladder"
        await store.delete_asset("ast_ok")
        assert (await store.get_session("ses_2")).asset_id is None
    finally:
        await store.close()
