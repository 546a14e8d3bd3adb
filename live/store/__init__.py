"""The state of the server: livestreams, API keys, sessions, assets, webhooks.

Everything else reaches persistent state only through `Store`; `open_store(url)`
gives `SqliteStore` (the embedded default) or `RedisStore` (cluster mode).
"""

from live.store.base import Store
from live.store.errors import StaleFence
from live.store.factory import open_store
from live.store.models import ApiKey, Livestream, Session
from live.store.sqlite import SqliteStore

__all__ = ["ApiKey", "Livestream", "Session", "SqliteStore", "StaleFence", "Store", "open_store"]
