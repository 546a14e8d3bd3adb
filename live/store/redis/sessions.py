"""Redis part of the store: publish sessions, with fencing.

A session write may carry a fence (the token of the stream's lease, which grows
with each new owner). `ses:fence:<livestream id>` keeps the highest one seen; a
write with a lower one is refused in the same script that would have made it, so a
node that lost the lease cannot overwrite what the new owner wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from live.store.aggregates.sessions import SessionStore
from live.store.checks import check_fields, check_page
from live.store.errors import StaleFence
from live.store.models import SESSION_MUTABLE, Session
from live.store.redis.codec import from_hash, pairs_to_dict, to_hash
from live.store.redis.connection import RedisConnection, changes_args, raise_if_exists
from live.store.redis.lua import script
from live.store.times import to_storage

# Create or change a session. ARGV: prefix, id, fence ("" = unchecked), livestream id
# and started_at stamp to create ("" to change an existing one), then the changes.
# Keeps ses:open (sessions without ended_at) and ast:named:<asset> (who names an
# asset) in step with the record. Answers the record, false for an unknown id, or
# the error "STALE_FENCE <highest>" (or EXISTS, creating a taken id).
_WRITE = script("""
local id, fence, create_for, stamp = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = P .. 'ses:' .. id
local stream = create_for
if create_for ~= '' and redis.call('EXISTS', key) == 1 then
    return redis.error_reply('EXISTS')
end
if create_for == '' then
    stream = redis.call('HGET', key, 'livestream_id')
    if not stream then return false end
end
if fence ~= '' then
    local fence_key = P .. 'ses:fence:' .. stream
    local highest = redis.call('GET', fence_key)
    if highest and tonumber(fence) < tonumber(highest) then
        return redis.error_reply('STALE_FENCE ' .. highest)
    end
    redis.call('SET', fence_key, fence)
end
local old_asset = redis.call('HGET', key, 'asset_id')
local seq
if create_for ~= '' then
    seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', key, '_seq', seq)
    redis.call('ZADD', P .. 'ses:ls:' .. stream, 0, ordered(stamp, seq, id))
else
    seq = redis.call('HGET', key, '_seq')
end
apply_changes(key, 6)
local f = redis.call('HMGET', key, 'ended_at', 'asset_id')
if f[1] then
    redis.call('ZREM', P .. 'ses:open', id)
else
    redis.call('ZADD', P .. 'ses:open', seq, id)
end
if old_asset ~= f[2] then
    if old_asset then redis.call('SREM', P .. 'ast:named:' .. old_asset, id) end
    if f[2] then redis.call('SADD', P .. 'ast:named:' .. f[2], id) end
end
return redis.call('HGETALL', key)
""")


class RedisSessions(RedisConnection, SessionStore):
    async def create_session(self, session: Session, *, fence: int | None = None) -> Session:
        await self._write_session(
            session.id, fence, (session.livestream_id, session.started_at), to_hash(session)
        )
        return session

    async def update_session(
        self, session_id: str, *, fence: int | None = None, **changes: Any
    ) -> Session | None:
        check_fields(changes, SESSION_MUTABLE)
        if not changes:
            return await self.get_session(session_id)
        return await self._write_session(session_id, fence, None, changes)

    async def _write_session(
        self,
        session_id: str,
        fence: int | None,
        create: tuple[str, datetime] | None,
        values: dict[str, Any],
    ) -> Session | None:
        stream, stamp = (create[0], to_storage(create[1])) if create else ("", "")
        fence_arg = "" if fence is None else str(int(fence))
        try:
            flat = await self._run(
                _WRITE, [], [session_id, fence_arg, stream, stamp, *changes_args(values)]
            )
        except ResponseError as exc:
            raise_if_exists(exc, session_id)
            if str(exc).startswith("STALE_FENCE"):
                raise StaleFence(int(str(exc).split()[1]), fence) from None
            raise
        return from_hash(Session, pairs_to_dict(flat)) if flat else None

    async def get_session(self, session_id: str) -> Session | None:
        return await self._get(Session, self._keys.session(session_id))

    async def list_sessions(
        self, livestream_id: str, page: int = 1, page_size: int = 20
    ) -> tuple[list[Session], int]:
        check_page(page, page_size)
        return await self._page(
            Session, self._keys.sessions_of(livestream_id), self._keys.session(""), page, page_size
        )

    async def list_open_sessions(self) -> list[Session]:
        ids = await self._redis.zrange(self._keys.open_sessions, 0, -1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.hgetall(self._keys.session(session_id))
            found = await pipe.execute()
        return [from_hash(Session, fields) for fields in found if fields]
