"""Redis part of the store: assets (recordings, uploads, imports), listed from `ast:index`, from
`ast:ls:<livestream id>`, or by status from `ast:status:<status>`, so that start-up
(the unfinished ones) and retention (the finished old ones) read only those."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from live.store.aggregates.assets import AssetStore
from live.store.checks import check_asset_changes, check_asset_statuses, check_page
from live.store.models import Asset, AssetStatus
from live.store.redis.codec import from_hash, pairs_to_dict
from live.store.redis.connection import RedisConnection, changes_args, records_of
from live.store.redis.lua import script
from live.store.times import to_storage

# Delete an asset with its index entries; the sessions that name it stop naming it.
# ARGV: prefix, id.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'ast:' .. id
local f = redis.call('HMGET', key, 'created_at', '_seq', 'livestream_id', 'status')
if not f[1] then return 0 end
local member = ordered(f[1], f[2], id)
redis.call('ZREM', P .. 'ast:index', member)
if f[3] then redis.call('ZREM', P .. 'ast:ls:' .. f[3], member) end
redis.call('ZREM', P .. 'ast:status:' .. f[4], member)
local named = P .. 'ast:named:' .. id
for _, session in ipairs(redis.call('SMEMBERS', named)) do
    local session_key = P .. 'ses:' .. session
    if redis.call('HGET', session_key, 'asset_id') == id then
        redis.call('HDEL', session_key, 'asset_id')
    end
end
redis.call('DEL', named, key)
return 1
""")

# Change an asset, moving it between the status indexes. ARGV: prefix, id, changes.
_UPDATE = script("""
local id = ARGV[2]
local key = P .. 'ast:' .. id
local f = redis.call('HMGET', key, 'status', 'created_at', '_seq')
if not f[1] then return false end
apply_changes(key, 3)
local status = redis.call('HGET', key, 'status')
if status ~= f[1] then
    local member = ordered(f[2], f[3], id)
    redis.call('ZREM', P .. 'ast:status:' .. f[1], member)
    redis.call('ZADD', P .. 'ast:status:' .. status, 0, member)
end
return redis.call('HGETALL', key)
""")

# A page of the assets with one of some statuses, created before a bound, newest
# first, with the total: the status indexes merged. ARGV: prefix, upper lex bound,
# offset, count, statuses.
_STATUS_PAGE = script("""
local upper, offset, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local members = {}
for i = 5, #ARGV do
    local index = P .. 'ast:status:' .. ARGV[i]
    for _, member in ipairs(redis.call('ZRANGE', index, upper, '-', 'BYLEX', 'REV')) do
        members[#members + 1] = member
    end
end
table.sort(members, function(a, b) return a > b end)
local out = {#members}
for i = offset + 1, math.min(offset + count, #members) do
    out[#out + 1] = redis.call('HGETALL', P .. 'ast:' .. id_of(members[i]))
end
return out
""")


class RedisAssets(RedisConnection, AssetStore):
    async def create_asset(self, asset: Asset) -> Asset:
        keys = self._keys
        await self._insert(
            asset,
            keys.asset(asset.id),
            stamp=asset.created_at,
            indexes=[
                keys.assets,
                keys.assets_in(asset.status),
                # uploads and imports belong to no livestream
                *([keys.assets_of(asset.livestream_id)] if asset.livestream_id else []),
            ],
        )
        return asset

    async def get_asset(self, asset_id: str) -> Asset | None:
        return await self._get(Asset, self._keys.asset(asset_id))

    async def list_assets(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        livestream_id: str | None = None,
        statuses: tuple[AssetStatus, ...] | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list[Asset], int]:
        check_page(page, page_size)
        if statuses is not None:
            check_asset_statuses(statuses)
        if statuses is not None and livestream_id is None:
            upper = "(" + to_storage(created_before) if created_before is not None else "+"
            answer = await self._run(
                _STATUS_PAGE,
                [],
                [upper, (page - 1) * page_size, page_size, *dict.fromkeys(statuses)],
            )
            return records_of(Asset, answer)
        # one livestream's assets: few enough to filter as they are read
        index = self._keys.assets if livestream_id is None else self._keys.assets_of(livestream_id)
        return await self._page(
            Asset,
            index,
            self._keys.asset(""),
            page,
            page_size,
            before=created_before,
            field_in=("status", statuses) if statuses is not None else None,
        )

    async def update_asset(self, asset_id: str, **changes: Any) -> Asset | None:
        check_asset_changes(changes)
        if not changes:
            return await self.get_asset(asset_id)
        flat = await self._run(_UPDATE, [], [asset_id, *changes_args(changes)])
        return from_hash(Asset, pairs_to_dict(flat)) if flat else None

    async def delete_asset(self, asset_id: str) -> bool:
        return bool(await self._run(_DELETE, [], [asset_id]))
