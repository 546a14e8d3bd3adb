"""The state of the server: livestreams, API keys, publish sessions.

Everything else reaches persistent state only through `Store`; `SqliteStore` is the
embedded default.
"""

from live.store.base import Store
from live.store.models import ApiKey, Livestream, Session
from live.store.sqlite import SqliteStore

__all__ = ["ApiKey", "Livestream", "Session", "SqliteStore", "Store"]
