"""SQLite part of the store: the import job queue, on table `import_jobs`
(`job_queue.py`)."""

from __future__ import annotations

from live.store.aggregates.import_jobs import QueuedImportJobs
from live.store.sqlite.connection import SqliteConnection
from live.store.sqlite.job_queue import SqliteJobQueue


class SqliteImportJobs(SqliteConnection, QueuedImportJobs):
    @property
    def _import_queue(self) -> SqliteJobQueue:
        return SqliteJobQueue(self, "import_jobs")
