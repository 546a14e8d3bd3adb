"""Redis part of the store: the import job queue, shared by every node of a cluster,
under `imp:` (`job_queue.py`)."""

from __future__ import annotations

from live.store.aggregates.import_jobs import QueuedImportJobs
from live.store.redis.connection import RedisConnection
from live.store.redis.job_queue import RedisJobQueue


class RedisImportJobs(RedisConnection, QueuedImportJobs):
    @property
    def _import_queue(self) -> RedisJobQueue:
        return RedisJobQueue(self, "imp:")
