"""Redis part of the store: assets (recordings), listed from `ast:index` or, for one
livestream, `ast:ls:<id>`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from live.store.aggregates.assets import AssetStore
from live.store.checks import check_asset_statuses, check_fields, check_page
from live.store.models import ASSET_MUTABLE, Asset, AssetStatus
from live.store.redis.connection import RedisConnection
from live.store.redis.lua import script

# Delete an asset with its index entries; the sessions that name it stop naming it.
# ARGV: prefix, id.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'ast:' .. id
local f = redis.call('HMGET', key, 'created_at', '_seq', 'livestream_id')
if not f[1] then return 0 end
local member = ordered(f[1], f[2], id)
redis.call('ZREM', P .. 'ast:index', member)
redis.call('ZREM', P .. 'ast:ls:' .. f[3], member)
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


class RedisAssets(RedisConnection, AssetStore):
    async def create_asset(self, asset: Asset) -> Asset:
        keys = self._keys
        await self._insert(
            asset,
            keys.asset(asset.id),
            stamp=asset.created_at,
            indexes=[keys.assets, keys.assets_of(asset.livestream_id)],
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
        check_fields(changes, ASSET_MUTABLE)
        if "status" in changes:
            check_asset_statuses([changes["status"]])
        if not changes:
            return await self.get_asset(asset_id)
        return await self._update(Asset, self._keys.asset(asset_id), changes)

    async def delete_asset(self, asset_id: str) -> bool:
        return bool(await self._run(_DELETE, [], [asset_id]))
