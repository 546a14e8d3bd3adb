"""SQLite part of the store: the VOD job queue, on table `vod_jobs`
(`job_queue.py`)."""

from __future__ import annotations

from live.store.aggregates.vod_jobs import QueuedVodJobs
from live.store.sqlite.connection import SqliteConnection
from live.store.sqlite.job_queue import SqliteJobQueue


class SqliteVodJobs(SqliteConnection, QueuedVodJobs):
    @property
    def _vod_queue(self) -> SqliteJobQueue:
        return SqliteJobQueue(self, "vod_jobs")
