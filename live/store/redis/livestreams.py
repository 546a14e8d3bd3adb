"""Redis part of the store: livestreams, stream keys and bans.

A livestream is found in one step by id (`ls:<id>`), by the hash of its stream key
(`ls:key:<sha256>`, so that no lookup compares a stranger's key with a stored one
byte by byte; the record keeps the hash as `_key_hash`) and by playback id
(`ls:pb:<id>`). Bans with an end are also in `ls:bans` by end
time, so lifting the expired ones reads only those. The ordered indexes `ls:live`
(flagged live) and `ls:banned` (with a ban, ended or not) let a status filter read
only the streams that are live or banned, plus the page itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from live.store.aggregates.livestreams import LivestreamStore
from live.store.checks import check_fields, check_page, check_status
from live.store.ids import hash_stream_key, new_stream_key, same_secret
from live.store.models import LIVESTREAM_SETTINGS, Livestream, Status
from live.store.redis.codec import from_hash, pairs_to_dict
from live.store.redis.connection import RedisConnection, changes_args, records_of
from live.store.redis.keys import from_micros, to_micros
from live.store.redis.lua import script
from live.store.times import to_storage, utcnow

# Delete a livestream with its lookups and index entries. ARGV: prefix, id.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'ls:' .. id
local f = redis.call('HMGET', key, '_key_hash', 'playback_id', 'created_at', '_seq')
if not f[2] then return 0 end
if f[1] then redis.call('DEL', P .. 'ls:key:' .. f[1]) end
redis.call('DEL', P .. 'ls:pb:' .. f[2], key)
local member = ordered(f[3], f[4], id)
for _, index in ipairs({'ls:index', 'ls:live', 'ls:banned'}) do
    redis.call('ZREM', P .. index, member)
end
redis.call('ZREM', P .. 'ls:bans', id)
return 1
""")

# The runtime's live flag, with its index entry. ARGV: prefix, id, "1" or "0".
_SET_LIVE = script("""
local id = ARGV[2]
local key = P .. 'ls:' .. id
local f = redis.call('HMGET', key, 'created_at', '_seq')
if not f[1] then return 0 end
redis.call('HSET', key, 'live', ARGV[3])
if ARGV[3] == '1' then
    redis.call('ZADD', P .. 'ls:live', 0, ordered(f[1], f[2], id))
else
    redis.call('ZREM', P .. 'ls:live', ordered(f[1], f[2], id))
end
return 1
""")

# Swap the stream key: the old lookup goes and the new one comes in the same step.
# ARGV: prefix, id, new key, its hash, updated_at.
_RESET_KEY = script("""
local id = ARGV[2]
local key = P .. 'ls:' .. id
if redis.call('EXISTS', key) == 0 then return 0 end
local old = redis.call('HGET', key, '_key_hash')
if old then redis.call('DEL', P .. 'ls:key:' .. old) end
redis.call('SET', P .. 'ls:key:' .. ARGV[4], id)
redis.call('HSET', key, 'stream_key', ARGV[3], '_key_hash', ARGV[4], 'updated_at', ARGV[5])
return 1
""")

# A lookup by plaintext stream key, as stores before `_key_hash` wrote them, becomes
# one by its hash. ARGV: prefix, the plaintext, its hash.
_HASH_OLD_LOOKUP = script("""
local old = P .. 'ls:key:' .. ARGV[2]
local id = redis.call('GET', old)
if not id then return 0 end
local key = P .. 'ls:' .. id
if redis.call('HGET', key, 'stream_key') == ARGV[2] then
    redis.call('SET', P .. 'ls:key:' .. ARGV[3], id)
    redis.call('HSET', key, '_key_hash', ARGV[3])
end
redis.call('DEL', old)
return 1
""")
_HASH_HEX = re.compile(r"[0-9a-f]{64}")

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
local f = redis.call('HMGET', key, 'banned_at', 'created_at', '_seq')
if f[1] then
    redis.call('ZADD', P .. 'ls:banned', 0, ordered(f[2], f[3], id))
else
    redis.call('ZREM', P .. 'ls:banned', ordered(f[2], f[3], id))
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
    local f = redis.call('HMGET', key, 'created_at', '_seq')
    if f[1] then
        redis.call('HDEL', key, 'ban_reason', 'banned_at', 'ban_until')
        redis.call('HSET', key, 'updated_at', ARGV[3])
        redis.call('ZREM', P .. 'ls:banned', ordered(f[1], f[2], id))
        out[#out + 1] = redis.call('HGETALL', key)
    end
end
return out
""")

# A page of the livestreams with a status now, newest first, with the total.
# ARGV: prefix, status, now as storage text, offset, count. Reads the banned and
# the live ones; idle is everything else, so its page skips over those.
_STATUS_PAGE = script("""
local status, now, offset, count = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local function record(member) return redis.call('HGETALL', P .. 'ls:' .. id_of(member)) end
local function banned_now(member)
    local f = redis.call('HMGET', P .. 'ls:' .. id_of(member), 'banned_at', 'ban_until')
    return f[1] and ((not f[2]) or f[2] > now)
end
local function page_of(members, keep)
    local out, total = {0}, 0
    for _, member in ipairs(members) do
        if keep(member) then
            if total >= offset and total < offset + count then out[#out + 1] = record(member) end
            total = total + 1
        end
    end
    out[1] = total
    return out
end
local banned = redis.call('ZRANGE', P .. 'ls:banned', 0, -1, 'REV')
if status == 'banned' then return page_of(banned, banned_now) end
local busy, busy_count = {}, 0  -- the members that are not idle now
for _, member in ipairs(banned) do
    if banned_now(member) then busy[member], busy_count = true, busy_count + 1 end
end
local live = redis.call('ZRANGE', P .. 'ls:live', 0, -1, 'REV')
if status == 'live' then return page_of(live, function(m) return not busy[m] end) end
for _, member in ipairs(live) do
    if not busy[member] then busy[member], busy_count = true, busy_count + 1 end
end
local all = P .. 'ls:index'
local out, seen = {redis.call('ZCARD', all) - busy_count}, 0
for _, member in ipairs(redis.call('ZRANGE', all, 0, offset + count + busy_count - 1, 'REV')) do
    if not busy[member] then
        if seen >= offset then out[#out + 1] = record(member) end
        seen = seen + 1
        if seen >= offset + count then break end
    end
end
return out
""")


class RedisLivestreams(RedisConnection, LivestreamStore):
    async def _insert_livestream(self, ls: Livestream) -> None:
        keys = self._keys
        key_hash = hash_stream_key(ls.stream_key)
        await self._insert(
            ls,
            keys.livestream(ls.id),
            stamp=ls.created_at,
            indexes=[keys.livestreams],
            lookups=[keys.stream_key_hash(key_hash), keys.playback_id(ls.playback_id)],
            own_fields={"_key_hash": key_hash},
        )

    async def get_livestream(self, livestream_id: str) -> Livestream | None:
        return await self._get(Livestream, self._keys.livestream(livestream_id))

    async def get_livestream_by_stream_key(self, stream_key: str) -> Livestream | None:
        found = await self._lookup(
            Livestream,
            self._keys.stream_key_hash(hash_stream_key(stream_key)),
            self._keys.livestream(""),
        )
        if found is None or not same_secret(found.stream_key, stream_key):
            return None
        return found

    async def hash_old_stream_key_lookups(self) -> int:
        """Turn lookups by plaintext stream key (written before they were hashed)
        into lookups by hash; answers how many. Any node may run it at start-up,
        several at once."""
        pattern = self._keys.stream_key_hash("*")
        start = len(pattern) - 1
        done = 0
        async for name in self._redis.scan_iter(match=pattern, count=1000):
            plaintext = name[start:]
            if _HASH_HEX.fullmatch(plaintext):
                continue
            done += await self._run(_HASH_OLD_LOOKUP, [], [plaintext, hash_stream_key(plaintext)])
        return done

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
        if status is None:
            return await self._page(
                Livestream, self._keys.livestreams, self._keys.livestream(""), page, page_size
            )
        answer = await self._run(
            _STATUS_PAGE,
            [],
            [status, to_storage(now or utcnow()), (page - 1) * page_size, page_size],
        )
        return records_of(Livestream, answer)

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
        return bool(await self._run(_SET_LIVE, [], [livestream_id, "1" if live else "0"]))

    async def reset_stream_key(self, livestream_id: str) -> str | None:
        key = new_stream_key()
        done = await self._run(
            _RESET_KEY, [], [livestream_id, key, hash_stream_key(key), to_storage(utcnow())]
        )
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
