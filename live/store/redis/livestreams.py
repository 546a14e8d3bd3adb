"""Redis part of the store: livestreams, stream keys and bans.

A livestream is found in one step by id (`ls:<id>`), by stream key (`ls:key:<key>`)
and by playback id (`ls:pb:<id>`). Bans with an end are also in `ls:bans` by end
time, so lifting the expired ones reads only those.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from live.store.aggregates.livestreams import LivestreamStore
from live.store.checks import check_fields, check_page, check_status
from live.store.ids import new_id, new_playback_id, new_stream_key
from live.store.models import LIVESTREAM_SETTINGS, Livestream, Status
from live.store.redis.codec import from_hash, pairs_to_dict
from live.store.redis.connection import RedisConnection, changes_args
from live.store.redis.keys import from_micros, to_micros
from live.store.redis.lua import script
from live.store.times import to_storage, utcnow

# Delete a livestream with its lookups and index entries. ARGV: prefix, id.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'ls:' .. id
local f = redis.call('HMGET', key, 'stream_key', 'playback_id', 'created_at', '_seq')
if not f[1] then return 0 end
redis.call('DEL', P .. 'ls:key:' .. f[1], P .. 'ls:pb:' .. f[2], key)
redis.call('ZREM', P .. 'ls:index', ordered(f[3], f[4], id))
redis.call('ZREM', P .. 'ls:bans', id)
return 1
""")

# Swap the stream key: the old lookup goes and the new one comes in the same step.
# ARGV: prefix, id, new key, updated_at.
_RESET_KEY = script("""
local id = ARGV[2]
local key = P .. 'ls:' .. id
local old = redis.call('HGET', key, 'stream_key')
if not old then return 0 end
redis.call('DEL', P .. 'ls:key:' .. old)
redis.call('SET', P .. 'ls:key:' .. ARGV[3], id)
redis.call('HSET', key, 'stream_key', ARGV[3], 'updated_at', ARGV[4])
return 1
""")

# Ban or unban: the record's fields and its entry in ls:bans together.
# ARGV: prefix, id, until in µs ("" = no end, or not banned), changes.
_SET_BAN = script("""
local id = ARGV[2]
local key = P .. 'ls:' .. id
if redis.call('EXISTS', key) == 0 then return false end
apply_changes(key, 4)
if ARGV[3] == '' then
    redis.call('ZREM', P .. 'ls:bans', id)
else
    redis.call('ZADD', P .. 'ls:bans', ARGV[3], id)
end
return redis.call('HGETALL', key)
""")

# Clear every ban that ended by now; each is taken out of ls:bans as it is cleared,
# so a racing caller cannot clear (and announce) it again. ARGV: prefix, now in µs,
# now as storage text. Answers the cleared records.
_LIFT_EXPIRED = script("""
local bans = P .. 'ls:bans'
local out = {}
for _, id in ipairs(redis.call('ZRANGE', bans, '-inf', ARGV[2], 'BYSCORE')) do
    redis.call('ZREM', bans, id)
    local key = P .. 'ls:' .. id
    if redis.call('EXISTS', key) == 1 then
        redis.call('HDEL', key, 'ban_reason', 'banned_at', 'ban_until')
        redis.call('HSET', key, 'updated_at', ARGV[3])
        out[#out + 1] = redis.call('HGETALL', key)
    end
end
return out
""")


class RedisLivestreams(RedisConnection, LivestreamStore):
    async def create_livestream(
        self,
        *,
        name: str,
        record: bool = True,
        latency_mode: str = "low",
        transcode: str = "auto",
        reconnect_window_s: int = 10,
        max_duration_s: int = 43200,
        srt_passphrase: str | None = None,
    ) -> Livestream:
        now = utcnow()
        ls = Livestream(
            id=new_id("ls"),
            name=name,
            stream_key=new_stream_key(),
            playback_id=new_playback_id(),
            record=record,
            latency_mode=latency_mode,  # type: ignore[arg-type]
            transcode=transcode,  # type: ignore[arg-type]
            reconnect_window_s=reconnect_window_s,
            max_duration_s=max_duration_s,
            srt_passphrase=srt_passphrase,
            created_at=now,
            updated_at=now,
        )
        keys = self._keys
        await self._insert(
            ls,
            keys.livestream(ls.id),
            stamp=now,
            indexes=[keys.livestreams],
            lookups=[keys.stream_key(ls.stream_key), keys.playback_id(ls.playback_id)],
        )
        return ls

    async def get_livestream(self, livestream_id: str) -> Livestream | None:
        return await self._get(Livestream, self._keys.livestream(livestream_id))

    async def get_livestream_by_stream_key(self, stream_key: str) -> Livestream | None:
        return await self._lookup(
            Livestream, self._keys.stream_key(stream_key), self._keys.livestream("")
        )

    async def get_livestream_by_playback_id(self, playback_id: str) -> Livestream | None:
        return await self._lookup(
            Livestream, self._keys.playback_id(playback_id), self._keys.livestream("")
        )

    async def list_livestreams(
        self,
        page: int = 1,
        page_size: int = 20,
        status: Status | None = None,
        *,
        now: datetime | None = None,
    ) -> tuple[list[Livestream], int]:
        check_page(page, page_size)
        check_status(status)
        return await self._page(
            Livestream,
            self._keys.livestreams,
            self._keys.livestream(""),
            page,
            page_size,
            filter_args=["status", status, to_storage(now or utcnow())] if status else [],
        )

    async def update_livestream(self, livestream_id: str, **changes: Any) -> Livestream | None:
        check_fields(changes, LIVESTREAM_SETTINGS)
        if not changes:
            return await self.get_livestream(livestream_id)
        return await self._update(
            Livestream, self._keys.livestream(livestream_id), {**changes, "updated_at": utcnow()}
        )

    async def delete_livestream(self, livestream_id: str) -> bool:
        return bool(await self._run(_DELETE, [], [livestream_id]))

    async def set_live(self, livestream_id: str, live: bool) -> bool:
        updated = await self._update(
            Livestream, self._keys.livestream(livestream_id), {"live": live}
        )
        return updated is not None

    async def reset_stream_key(self, livestream_id: str) -> str | None:
        key = new_stream_key()
        done = await self._run(_RESET_KEY, [], [livestream_id, key, to_storage(utcnow())])
        return key if done else None

    async def ban(
        self, livestream_id: str, reason: str | None = None, until: datetime | None = None
    ) -> Livestream | None:
        now = utcnow()
        return await self._set_ban(
            livestream_id,
            until,
            {"ban_reason": reason, "banned_at": now, "ban_until": until, "updated_at": now},
        )

    async def unban(self, livestream_id: str) -> Livestream | None:
        return await self._set_ban(
            livestream_id,
            None,
            {"ban_reason": None, "banned_at": None, "ban_until": None, "updated_at": utcnow()},
        )

    async def _set_ban(
        self, livestream_id: str, until: datetime | None, values: dict[str, Any]
    ) -> Livestream | None:
        until_us = str(to_micros(until)) if until is not None else ""
        flat = await self._run(_SET_BAN, [], [livestream_id, until_us, *changes_args(values)])
        return from_hash(Livestream, pairs_to_dict(flat)) if flat else None

    async def lift_expired_bans(self, now: datetime | None = None) -> list[Livestream]:
        now = now or utcnow()
        lifted = await self._run(_LIFT_EXPIRED, [], [to_micros(now), to_storage(now)])
        return [from_hash(Livestream, pairs_to_dict(flat)) for flat in lifted]

    async def next_ban_expiry(self) -> datetime | None:
        first = await self._redis.zrange(self._keys.bans, 0, 0, withscores=True)
        return from_micros(first[0][1]) if first else None
