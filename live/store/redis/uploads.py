"""Redis part of the store: uploads in progress, one hash each (`upl:<id>`), found
by asset (`upl:asset:<asset id>`) and by expiry (`upl:expiry`, scored in µs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from live.store.aggregates.uploads import UploadStore
from live.store.models import Upload
from live.store.redis.codec import encode_value, from_hash, pairs_to_dict, to_hash
from live.store.redis.connection import RedisConnection, changes_args, raise_if_exists
from live.store.redis.keys import to_micros
from live.store.redis.lua import script
from live.store.times import to_storage

# A new upload replaces its asset's previous one. ARGV: prefix, id, asset id, expiry
# in µs, changes. Answers the replaced upload (HGETALL) or an empty list.
_CREATE = script("""
local id, asset = ARGV[2], ARGV[3]
local key = P .. 'upl:' .. id
if redis.call('EXISTS', key) == 1 then return redis.error_reply('EXISTS') end
local lookup = P .. 'upl:asset:' .. asset
local previous = redis.call('GET', lookup)
local old = {}
if previous then
    local old_key = P .. 'upl:' .. previous
    old = redis.call('HGETALL', old_key)
    redis.call('DEL', old_key)
    redis.call('ZREM', P .. 'upl:expiry', previous)
end
apply_changes(key, 5)
redis.call('SET', lookup, id)
redis.call('ZADD', P .. 'upl:expiry', ARGV[4], id)
return old
""")

# Become the writer if nobody is or their claim lapsed. ARGV: prefix, id, holder,
# until, now (storage text: text order is time order). Answers the upload.
_CLAIM = script("""
local key = P .. 'upl:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then return {} end
local f = redis.call('HMGET', key, 'holder', 'held_until')
if (not f[1]) or f[1] == ARGV[3] or (f[2] and f[2] < ARGV[5]) then
    redis.call('HSET', key, 'holder', ARGV[3], 'held_until', ARGV[4])
end
return redis.call('HGETALL', key)
""")

# Progress, by the writer only. ARGV: prefix, id, holder, offset, write, until.
_SAVE = script("""
local key = P .. 'upl:' .. ARGV[2]
if redis.call('HGET', key, 'holder') ~= ARGV[3] then return {} end
redis.call('HSET', key, 'offset', ARGV[4], 'write', ARGV[5], 'held_until', ARGV[6])
return redis.call('HGETALL', key)
""")

# ARGV: prefix, id, holder.
_RELEASE = script("""
local key = P .. 'upl:' .. ARGV[2]
if redis.call('HGET', key, 'holder') == ARGV[3] then
    redis.call('HDEL', key, 'holder', 'held_until')
end
return 1
""")

# ARGV: prefix, id. Answers the removed upload or an empty list.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'upl:' .. id
local flat = redis.call('HGETALL', key)
if #flat == 0 then return flat end
local asset = redis.call('HGET', key, 'asset_id')
redis.call('DEL', key)
redis.call('ZREM', P .. 'upl:expiry', id)
local lookup = P .. 'upl:asset:' .. asset
if redis.call('GET', lookup) == id then redis.call('DEL', lookup) end
return flat
""")


def _record(flat: list[str]) -> Upload | None:
    return from_hash(Upload, pairs_to_dict(flat)) if flat else None


class RedisUploads(RedisConnection, UploadStore):
    def _upload_key(self, upload_id: str) -> str:
        return f"{self._keys.prefix}upl:{upload_id}"

    async def create_upload(self, upload: Upload) -> Upload | None:
        try:
            flat = await self._run(
                _CREATE,
                [],
                [upload.id, upload.asset_id, to_micros(upload.expires_at),
                 *changes_args(to_hash(upload))],
            )  # fmt: skip
        except ResponseError as exc:
            raise_if_exists(exc, upload.id)
            raise
        return _record(flat)

    async def get_upload(self, upload_id: str) -> Upload | None:
        return await self._get(Upload, self._upload_key(upload_id))

    async def claim_upload(
        self, upload_id: str, holder: str, until: datetime, now: datetime
    ) -> Upload | None:
        flat = await self._run(_CLAIM, [], [upload_id, holder, to_storage(until), to_storage(now)])
        return _record(flat)

    async def save_upload(
        self, upload_id: str, holder: str, *, offset: int, write: dict[str, Any], until: datetime
    ) -> Upload | None:
        flat = await self._run(
            _SAVE, [], [upload_id, holder, offset, encode_value(write), to_storage(until)]
        )
        return _record(flat)

    async def release_upload(self, upload_id: str, holder: str) -> None:
        await self._run(_RELEASE, [], [upload_id, holder])

    async def delete_upload(self, upload_id: str) -> Upload | None:
        return _record(await self._run(_DELETE, [], [upload_id]))

    async def list_expired_uploads(self, now: datetime, limit: int = 100) -> list[Upload]:
        ids = await self._redis.zrange(
            f"{self._keys.prefix}upl:expiry", "-inf", f"({to_micros(now)}",
            byscore=True, offset=0, num=limit,
        )  # fmt: skip
        found = [await self.get_upload(upload_id) for upload_id in ids]
        return [upload for upload in found if upload is not None]
