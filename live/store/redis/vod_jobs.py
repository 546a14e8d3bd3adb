"""Redis part of the store: the VOD job queue, shared by every node of a cluster.

    vod:job:<asset id>    the job's hash
    vod:queue             queued jobs: score = insertion number (`seq`), oldest first
    vod:running           running jobs: score = lease end in µs, so the lapsed ones
                          are a range by score

Each step is one script, so a claim, a renewal and a takeover never interleave: two
nodes asking at once get two different jobs, or one gets none. A job enters the
cluster's queue here rather than in a job library (arq pins redis<6, and its jobs
have no renewable lease for hour-long transcodes): it is the same contract as the
SQLite store's, in the store every node already shares.
"""

from __future__ import annotations

from datetime import datetime

from live.store.aggregates.vod_jobs import VodJobStore
from live.store.models import VodJob
from live.store.redis.codec import from_hash, pairs_to_dict
from live.store.redis.connection import RedisConnection
from live.store.redis.keys import to_micros
from live.store.redis.lua import script
from live.store.times import to_storage, utcnow

# ARGV: prefix, asset id, created_at. Answers the job (new or existing).
_ENQUEUE = script("""
local key = P .. 'vod:job:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then
    local seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', key, '_seq', seq, 'asset_id', ARGV[2], 'state', 'queued',
        'attempts', 0, 'created_at', ARGV[3])
    redis.call('ZADD', P .. 'vod:queue', seq, ARGV[2])
end
return redis.call('HGETALL', key)
""")

# ARGV: prefix, node, now µs, lease µs, lease text. A lapsed running job first,
# else the oldest queued one. Answers the job, or false.
_CLAIM = script("""
local running, queue = P .. 'vod:running', P .. 'vod:queue'
local id = redis.call('ZRANGE', running, '-inf', ARGV[3], 'BYSCORE', 'LIMIT', 0, 1)[1]
if not id then
    id = redis.call('ZRANGE', queue, 0, 0)[1]
    if not id then return false end
    redis.call('ZREM', queue, id)
end
local key = P .. 'vod:job:' .. id
redis.call('ZADD', running, ARGV[4], id)
redis.call('HSET', key, 'state', 'running', 'node_id', ARGV[2], 'lease_until', ARGV[5])
redis.call('HINCRBY', key, 'attempts', 1)
return redis.call('HGETALL', key)
""")

# ARGV: prefix, asset id, node, then "renew" with lease µs and text, "release", or
# "remove". Acts only on a running job the node holds; answers 1 if it did.
_HELD = script("""
local id, node, action = ARGV[2], ARGV[3], ARGV[4]
local key = P .. 'vod:job:' .. id
local f = redis.call('HMGET', key, 'state', 'node_id', '_seq')
if f[1] ~= 'running' or f[2] ~= node then return 0 end
if action == 'renew' then
    redis.call('ZADD', P .. 'vod:running', ARGV[5], id)
    redis.call('HSET', key, 'lease_until', ARGV[6])
    return 1
end
redis.call('ZREM', P .. 'vod:running', id)
if action == 'release' then
    redis.call('HSET', key, 'state', 'queued')
    redis.call('HDEL', key, 'node_id', 'lease_until')
    redis.call('ZADD', P .. 'vod:queue', f[3], id)
else
    redis.call('DEL', key)
end
return 1
""")

# ARGV: prefix. Every running job back to the queue; answers how many.
_REQUEUE = script("""
local running = redis.call('ZRANGE', P .. 'vod:running', 0, -1)
for _, id in ipairs(running) do
    local key = P .. 'vod:job:' .. id
    redis.call('HSET', key, 'state', 'queued')
    redis.call('HDEL', key, 'node_id', 'lease_until')
    redis.call('ZADD', P .. 'vod:queue', redis.call('HGET', key, '_seq'), id)
end
redis.call('DEL', P .. 'vod:running')
return #running
""")

# ARGV: prefix, asset id. Answers 1 if there was a job.
_REMOVE = script("""
local id = ARGV[2]
redis.call('ZREM', P .. 'vod:running', id)
redis.call('ZREM', P .. 'vod:queue', id)
return redis.call('DEL', P .. 'vod:job:' .. id)
""")

# ARGV: prefix. Running jobs (by lease end), then the queue. Answers hashes.
_LIST = script("""
local out = {}
for _, index in ipairs({'vod:running', 'vod:queue'}) do
    for _, id in ipairs(redis.call('ZRANGE', P .. index, 0, -1)) do
        out[#out + 1] = redis.call('HGETALL', P .. 'vod:job:' .. id)
    end
end
return out
""")


class RedisVodJobs(RedisConnection, VodJobStore):
    async def enqueue_vod_job(self, asset_id: str) -> VodJob:
        return _job(await self._run(_ENQUEUE, [], [asset_id, to_storage(utcnow())]))

    async def claim_vod_job(
        self, node_id: str, now: datetime, lease_until: datetime
    ) -> VodJob | None:
        flat = await self._run(
            _CLAIM,
            [],
            [node_id, to_micros(now), to_micros(lease_until), to_storage(lease_until)],
        )
        return _job(flat) if flat else None

    async def renew_vod_job(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        args = [asset_id, node_id, "renew", to_micros(lease_until), to_storage(lease_until)]
        return bool(await self._run(_HELD, [], args))

    async def release_vod_job(self, asset_id: str, node_id: str) -> bool:
        return bool(await self._run(_HELD, [], [asset_id, node_id, "release"]))

    async def requeue_vod_jobs(self) -> int:
        return int(await self._run(_REQUEUE, [], []))

    async def remove_vod_job(self, asset_id: str, node_id: str | None = None) -> bool:
        if node_id is None:
            return bool(await self._run(_REMOVE, [], [asset_id]))
        return bool(await self._run(_HELD, [], [asset_id, node_id, "remove"]))

    async def get_vod_job(self, asset_id: str) -> VodJob | None:
        return await self._get(VodJob, f"{self._keys.prefix}vod:job:{asset_id}")

    async def list_vod_jobs(self) -> list[VodJob]:
        return [_job(flat) for flat in await self._run(_LIST, [], [])]


def _job(flat: list[str]) -> VodJob:
    return from_hash(VodJob, pairs_to_dict(flat))
