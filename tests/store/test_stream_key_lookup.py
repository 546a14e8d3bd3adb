"""A publish finds its livestream by the hash of the stream key, then compares the
keys themselves in constant time: no index or query compares a stranger's key with
a stored one byte by byte. Both stores, and both upgrade what older versions wrote."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.store import SqliteStore, Store
from live.store.ids import hash_stream_key, same_secret
from live.store.sqlite import DB_FILENAME
from live.store.sqlite_schema import MIGRATIONS


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        instance: Store = await SqliteStore.open(tmp_path)
    else:
        from live.store.redis import RedisStore

        instance = await RedisStore.open(request.getfixturevalue("redis_url"))
    try:
        yield instance
    finally:
        await instance.close()


async def _point_hash_at(store: Store, key_hash: str, livestream_id: str) -> None:
    """Make the hash of another key lead to `livestream_id`, as a collision would."""
    if isinstance(store, SqliteStore):
        await store._write(
            "UPDATE livestreams SET stream_key_hash = ? WHERE id = ?", (key_hash, livestream_id)
        )
    else:
        await store.client.set(store._keys.stream_key_hash(key_hash), livestream_id)


async def test_a_key_whose_hash_leads_to_a_stream_is_still_compared(store) -> None:
    livestream = await store.create_livestream(name="show")
    await _point_hash_at(store, hash_stream_key("sk_guess"), livestream.id)
    assert await store.get_livestream_by_stream_key("sk_guess") is None


async def test_the_keys_are_compared_with_compare_digest(store, monkeypatch) -> None:
    compared: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr("live.store.ids.hmac.compare_digest", spy)
    livestream = await store.create_livestream(name="show")
    assert await store.get_livestream_by_stream_key(livestream.stream_key) == livestream
    assert compared == [(livestream.stream_key.encode(), livestream.stream_key.encode())]


async def test_reset_moves_the_lookup_to_the_new_hash(store) -> None:
    livestream = await store.create_livestream(name="show")
    new_key = await store.reset_stream_key(livestream.id)
    assert new_key is not None
    assert await store.get_livestream_by_stream_key(livestream.stream_key) is None
    assert (await store.get_livestream_by_stream_key(new_key)).id == livestream.id
    assert await store.delete_livestream(livestream.id)
    assert await store.get_livestream_by_stream_key(new_key) is None


async def test_sqlite_queries_carry_the_hash_never_the_key(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    try:
        livestream = await store.create_livestream(name="show")
        statements: list[str] = []
        await store._db.set_trace_callback(statements.append)  # SQL with its values
        assert await store.get_livestream_by_stream_key(livestream.stream_key) == livestream
        assert await store.get_livestream_by_stream_key(livestream.stream_key + "x") is None
        await store._db.set_trace_callback(None)
    finally:
        await store.close()
    assert len(statements) == 2
    assert all("stream_key_hash" in statement for statement in statements)
    assert not any(livestream.stream_key in statement for statement in statements)
    assert hash_stream_key(livestream.stream_key) in statements[0]


async def test_redis_keeps_no_key_named_after_a_stream_key(redis_url) -> None:
    from live.store.redis import RedisStore

    store = await RedisStore.open(redis_url)
    try:
        livestream = await store.create_livestream(name="show")
        names = [name async for name in store.client.scan_iter(match="*")]
    finally:
        await store.close()
    assert not [name for name in names if livestream.stream_key in name]
    assert store._keys.stream_key_hash(hash_stream_key(livestream.stream_key)) in names


async def test_an_old_sqlite_file_is_upgraded_to_hashed_lookups(tmp_path: Path) -> None:
    """A data dir of schema 5 (plaintext lookups) opens and finds its streams by key."""
    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for script in MIGRATIONS[:5]:
            conn.executescript(script)
        conn.execute("INSERT INTO schema_version VALUES (5)")
        conn.execute(
            "INSERT INTO livestreams (id, name, stream_key, playback_id, record,"
            " latency_mode, transcode, reconnect_window_s, max_duration_s, created_at,"
            " updated_at) VALUES ('ls_old', 'old', 'sk_old_key', 'pb_old', 1, 'low', 'auto',"
            " 10, 43200, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
        )
    store = await SqliteStore.open(tmp_path)
    try:
        found = await store.get_livestream_by_stream_key("sk_old_key")
        assert found is not None and found.id == "ls_old"
        assert found.stream_key == "sk_old_key"  # admins still read it
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        stored = conn.execute("SELECT stream_key_hash FROM livestreams").fetchone()[0]
    assert stored == hashlib.sha256(b"sk_old_key").hexdigest()


async def test_old_redis_lookups_by_plaintext_are_hashed_at_start(redis_url) -> None:
    from live.store.redis import RedisStore

    store = await RedisStore.open(redis_url)
    try:
        livestream = await store.create_livestream(name="show")
        keys = store._keys
        # What an older version wrote: the lookup named by the key, no _key_hash.
        await store.client.delete(keys.stream_key_hash(hash_stream_key(livestream.stream_key)))
        await store.client.hdel(keys.livestream(livestream.id), "_key_hash")
        await store.client.set(f"{keys.prefix}ls:key:{livestream.stream_key}", livestream.id)
        assert await store.get_livestream_by_stream_key(livestream.stream_key) is None
    finally:
        await store.close()

    store = await RedisStore.open(redis_url)
    try:
        found = await store.get_livestream_by_stream_key(livestream.stream_key)
        assert found == livestream
        assert not await store.client.exists(f"{keys.prefix}ls:key:{livestream.stream_key}")
        assert await store.hash_old_stream_key_lookups() == 0  # nothing left to do
        assert await store.delete_livestream(livestream.id)
        assert [name async for name in store.client.scan_iter(match=f"{keys.prefix}ls:key:*")] == []
    finally:
        await store.close()


def test_same_secret_takes_any_text() -> None:
    assert same_secret("sk_a", "sk_a")
    assert not same_secret("sk_a", "sk_b")
    assert not same_secret("sk_a", "sk_\udcff")  # undecodable header bytes: wrong, no crash
    assert not same_secret("sk_ä", "sk_a")
