"""Redis part of the store: the VOD job queue, shared by every node of a cluster,
under `vod:` (`job_queue.py`). A job enters the cluster's queue here rather than in
a job library (arq pins redis<6, and its jobs have no renewable lease for hour-long
transcodes): it is the same contract as the SQLite store's, in the store every node
already shares.
"""

from __future__ import annotations

from live.store.aggregates.vod_jobs import QueuedVodJobs
from live.store.redis.connection import RedisConnection
from live.store.redis.job_queue import RedisJobQueue


class RedisVodJobs(RedisConnection, QueuedVodJobs):
    @property
    def _vod_queue(self) -> RedisJobQueue:
        return RedisJobQueue(self, "vod:")
