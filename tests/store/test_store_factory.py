"""`open_store(url)`: the URL picks the backend, and a single node needs no Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from live.store import SqliteStore, open_store
from live.store.sqlite import DB_FILENAME


async def test_a_path_opens_sqlite(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "live.db")
    try:
        assert isinstance(store, SqliteStore)
        ls = await store.create_livestream(name="kept")
    finally:
        await store.close()
    again = await open_store(f"sqlite://{tmp_path / 'live.db'}")  # the same file as a URL
    try:
        assert await again.get_livestream(ls.id) == ls
    finally:
        await again.close()


async def test_a_data_dir_opens_the_file_inside(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path))
    await store.close()
    assert (tmp_path / DB_FILENAME).exists()


async def test_a_redis_url_opens_redis(redis_url: str) -> None:
    from live.store.redis import RedisStore

    store = await open_store(redis_url)
    try:
        assert isinstance(store, RedisStore)
        ls = await store.create_livestream(name="shared")
        assert await store.get_livestream_by_stream_key(ls.stream_key) == ls
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["postgres://db/live", "sqlite://", "s3://bucket/x"])
async def test_unknown_or_empty_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        await open_store(url)


async def test_an_unreachable_redis_fails_at_open_without_the_password() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionError) as info:
        await open_store(f"redis://:hunter2@127.0.0.1:{port}/0")
    assert "does not answer" in str(info.value) and "hunter2" not in str(info.value)


def test_sqlite_alone_does_not_import_redis(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from live.store import open_store\n"
        "async def main():\n"
        f"    store = await open_store({str(tmp_path / 'x.db')!r})\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


async def test_a_client_returning_bytes_is_refused(redis_url: str) -> None:
    from redis.asyncio import Redis

    from live.store.redis import RedisStore

    client = Redis.from_url(redis_url)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisStore(client)
    finally:
        await client.aclose()
