"""The SQLite store, one module per aggregate over a shared connection
(`connection.py`), assembled in `store.py`."""

from live.store.sqlite.store import DB_FILENAME, SqliteStore

__all__ = ["DB_FILENAME", "SqliteStore"]
