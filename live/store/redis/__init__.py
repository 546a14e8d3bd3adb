"""The Redis store, one module per aggregate over a shared client (`connection.py`),
assembled in `store.py`; the key layout is in `keys.py`, the shared Lua in `lua.py`."""

from live.store.redis.store import RedisStore

__all__ = ["RedisStore"]
