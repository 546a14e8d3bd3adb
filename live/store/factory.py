"""One way in to the store: from a URL or a path, whichever backend it names."""

from __future__ import annotations

from live.store.base import Store


async def open_store(url: str) -> Store:
    """`redis://HOST:PORT/DB` gives the Redis store (cluster mode); a path or
    `sqlite:///path` gives SQLite, the embedded default."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        raise NotImplementedError("the Redis store")
    from live.store.sqlite import SqliteStore

    return await SqliteStore.open(url.removeprefix("sqlite://"))
