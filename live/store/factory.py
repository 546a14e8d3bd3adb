"""Open the store a URL names, so that configuration, not code, picks the backend.

    /var/lib/live/live.db, data/live.db      a file path: SQLite
    sqlite:///var/lib/live/live.db           the same, as a URL (the path follows "sqlite://")
    redis://host:6379/0, rediss://...        Redis (cluster mode)

The Redis client is imported only for a Redis URL: a single node needs no Redis.
"""

from __future__ import annotations

from pathlib import Path

from live.store.base import Store

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


async def open_store(url: str | Path) -> Store:
    """The store at `url`; ValueError for a URL scheme it does not know."""
    text = str(url)
    if text.startswith(_REDIS_SCHEMES):
        from live.store.redis import RedisStore

        return await RedisStore.open(text)
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://")
        if not text:
            raise ValueError("sqlite:// needs a path, e.g. sqlite:///var/lib/live/live.db")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(f"unknown store URL scheme {scheme!r}: use a path, sqlite:// or redis://")
    from live.store.sqlite import SqliteStore

    return await SqliteStore.open(text)
