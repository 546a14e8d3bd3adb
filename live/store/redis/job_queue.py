"""A queue of jobs, one per asset, claimed with a lease (`aggregates/vod_jobs.py`
says how), in Redis under one namespace: the VOD jobs' (`vod:`) and the imports'
(`imp:`) share this code.

    <ns>job:<asset id>    the job's hash
    <ns>queue             queued jobs: score = insertion number (`seq`), oldest first
    <ns>running           running jobs: score = lease end in µs, so the lapsed ones
                          are a range by score

Each step is one script, so a claim, a renewal and a takeover never interleave: two
nodes asking at once get two different jobs, or one gets none. Every script gets
the namespace as ARGV[2], after the prefix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from live.store.models import VodJob
from live.store.redis.codec import from_hash, pairs_to_dict
from live.store.redis.connection import RedisConnection
from live.store.redis.keys import to_micros
from live.store.redis.lua import script
from live.store.times import to_storage, utcnow

# ARGV: prefix, namespace, asset id, created_at. Answers the job (new or existing).
_ENQUEUE = script("""
local N = P .. ARGV[2]
local key = N .. 'job:' .. ARGV[3]
if redis.call('EXISTS', key) == 0 then
    local seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', key, '_seq', seq, 'asset_id', ARGV[3], 'state', 'queued',
        'attempts', 0, 'created_at', ARGV[4])
    redis.call('ZADD', N .. 'queue', seq, ARGV[3])
end
return redis.call('HGETALL', key)
""")

# ARGV: prefix, namespace, node, now µs, lease µs, lease text. A lapsed running job
# first, else the oldest queued one. Answers the job, or false.
_CLAIM = script("""
local N = P .. ARGV[2]
local running, queue = N .. 'running', N .. 'queue'
local id = redis.call('ZRANGE', running, '-inf', ARGV[4], 'BYSCORE', 'LIMIT', 0, 1)[1]
if not id then
    id = redis.call('ZRANGE', queue, 0, 0)[1]
    if not id then return false end
    redis.call('ZREM', queue, id)
end
local key = N .. 'job:' .. id
redis.call('ZADD', running, ARGV[5], id)
redis.call('HSET', key, 'state', 'running', 'node_id', ARGV[3], 'lease_until', ARGV[6])
redis.call('HINCRBY', key, 'attempts', 1)
return redis.call('HGETALL', key)
""")

# ARGV: prefix, namespace, asset id, node, then "renew" with lease µs and text,
# "release", or "remove". Acts only on a running job the node holds; answers 1 if it
# did.
_HELD = script("""
local N = P .. ARGV[2]
local id, node, action = ARGV[3], ARGV[4], ARGV[5]
local key = N .. 'job:' .. id
local f = redis.call('HMGET', key, 'state', 'node_id', '_seq')
if f[1] ~= 'running' or f[2] ~= node then return 0 end
if action == 'renew' then
    redis.call('ZADD', N .. 'running', ARGV[6], id)
    redis.call('HSET', key, 'lease_until', ARGV[7])
    return 1
end
redis.call('ZREM', N .. 'running', id)
if action == 'release' then
    redis.call('HSET', key, 'state', 'queued')
    redis.call('HDEL', key, 'node_id', 'lease_until')
    redis.call('ZADD', N .. 'queue', f[3], id)
else
    redis.call('DEL', key)
end
return 1
""")

# ARGV: prefix, namespace. Every running job back to the queue; answers how many.
_REQUEUE = script("""
local N = P .. ARGV[2]
local running = redis.call('ZRANGE', N .. 'running', 0, -1)
for _, id in ipairs(running) do
    local key = N .. 'job:' .. id
    redis.call('HSET', key, 'state', 'queued')
    redis.call('HDEL', key, 'node_id', 'lease_until')
    redis.call('ZADD', N .. 'queue', redis.call('HGET', key, '_seq'), id)
end
redis.call('DEL', N .. 'running')
return #running
""")

# ARGV: prefix, namespace, asset id. Answers 1 if there was a job.
_REMOVE = script("""
local N = P .. ARGV[2]
local id = ARGV[3]
redis.call('ZREM', N .. 'running', id)
redis.call('ZREM', N .. 'queue', id)
return redis.call('DEL', N .. 'job:' .. id)
""")

# ARGV: prefix, namespace. Running jobs (by lease end), then the queue. Answers hashes.
_LIST = script("""
local N = P .. ARGV[2]
local out = {}
for _, index in ipairs({'running', 'queue'}) do
    for _, id in ipairs(redis.call('ZRANGE', N .. index, 0, -1)) do
        out[#out + 1] = redis.call('HGETALL', N .. 'job:' .. id)
    end
end
return out
""")


class RedisJobQueue:
    """The queue under `namespace` ("vod:", "imp:")."""

    def __init__(self, db: RedisConnection, namespace: str) -> None:
        self.db = db
        self.namespace = namespace

    async def _run(self, source: str, *args: Any) -> Any:
        return await self.db._run(source, [], [self.namespace, *args])

    async def enqueue(self, asset_id: str) -> VodJob:
        return _job(await self._run(_ENQUEUE, asset_id, to_storage(utcnow())))

    async def claim(self, node_id: str, now: datetime, lease_until: datetime) -> VodJob | None:
        flat = await self._run(
            _CLAIM, node_id, to_micros(now), to_micros(lease_until), to_storage(lease_until)
        )
        return _job(flat) if flat else None

    async def renew(self, asset_id: str, node_id: str, lease_until: datetime) -> bool:
        args = (asset_id, node_id, "renew", to_micros(lease_until), to_storage(lease_until))
        return bool(await self._run(_HELD, *args))

    async def release(self, asset_id: str, node_id: str) -> bool:
        return bool(await self._run(_HELD, asset_id, node_id, "release"))

    async def requeue(self) -> int:
        return int(await self._run(_REQUEUE))

    async def remove(self, asset_id: str, node_id: str | None = None) -> bool:
        if node_id is None:
            return bool(await self._run(_REMOVE, asset_id))
        return bool(await self._run(_HELD, asset_id, node_id, "remove"))

    async def get(self, asset_id: str) -> VodJob | None:
        return await self.db._get(VodJob, f"{self.db._keys.prefix}{self.namespace}job:{asset_id}")

    async def list(self) -> list[VodJob]:
        return [_job(flat) for flat in await self._run(_LIST)]


def _job(flat: list[str]) -> VodJob:
    return from_hash(VodJob, pairs_to_dict(flat))
