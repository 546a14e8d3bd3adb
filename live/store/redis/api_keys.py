"""Redis part of the store: API keys, found in one step by the hash of their secret
(`ak:hash:<sha256>`)."""

from __future__ import annotations

import hmac

from live.store.aggregates.api_keys import LAST_USED_RESOLUTION, ApiKeyStore
from live.store.checks import check_page, check_scope
from live.store.ids import hash_api_key, new_api_key_secret, new_id
from live.store.models import ApiKey, Scope
from live.store.redis.connection import RedisConnection
from live.store.redis.lua import script
from live.store.times import utcnow

# Delete a key with its lookup and index entry. ARGV: prefix, id.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'ak:' .. id
local f = redis.call('HMGET', key, 'key_hash', 'created_at', '_seq')
if not f[1] then return 0 end
redis.call('DEL', P .. 'ak:hash:' .. f[1], key)
redis.call('ZREM', P .. 'ak:index', ordered(f[2], f[3], id))
return 1
""")


class RedisApiKeys(RedisConnection, ApiKeyStore):
    async def create_api_key(self, name: str, scope: Scope) -> tuple[ApiKey, str]:
        plaintext = new_api_key_secret()
        return await self._insert_api_key(plaintext, name, scope), plaintext

    async def ensure_api_key(self, plaintext: str, name: str, scope: Scope) -> ApiKey:
        return await self._insert_api_key(plaintext, name, scope, only_new=True)

    async def _insert_api_key(
        self, plaintext: str, name: str, scope: Scope, *, only_new: bool = False
    ) -> ApiKey:
        check_scope(scope)
        key = ApiKey(id=new_id("ak"), name=name, scope=scope, key_hash=hash_api_key(plaintext))
        existing = await self._insert(
            key,
            self._keys.api_key(key.id),
            stamp=key.created_at,
            indexes=[self._keys.api_keys],
            lookups=[self._keys.api_key_hash(key.key_hash)],
            only_new=only_new,
        )
        if existing is not None:  # ensure: this secret is a key already, left unchanged
            stored = await self.get_api_key(existing)
            assert stored is not None
            return stored
        return key

    async def verify_api_key(self, plaintext: str) -> ApiKey | None:
        if not plaintext:
            return None
        digest = hash_api_key(plaintext)
        key = await self._lookup(ApiKey, self._keys.api_key_hash(digest), self._keys.api_key(""))
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            await self._update(ApiKey, self._keys.api_key(key.id), {"last_used_at": now})
            key.last_used_at = now
        return key

    async def get_api_key(self, api_key_id: str) -> ApiKey | None:
        return await self._get(ApiKey, self._keys.api_key(api_key_id))

    async def list_api_keys(self, page: int = 1, page_size: int = 20) -> tuple[list[ApiKey], int]:
        check_page(page, page_size)
        return await self._page(
            ApiKey, self._keys.api_keys, self._keys.api_key(""), page, page_size
        )

    async def delete_api_key(self, api_key_id: str) -> bool:
        return bool(await self._run(_DELETE, [], [api_key_id]))

    async def count_api_keys(self) -> int:
        return await self._redis.zcard(self._keys.api_keys)
