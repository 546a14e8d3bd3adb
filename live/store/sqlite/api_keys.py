"""SQLite part of the store: API keys."""

from __future__ import annotations

import hmac
import sqlite3

from live.store.aggregates.api_keys import LAST_USED_RESOLUTION, ApiKeyStore
from live.store.checks import check_page, check_scope
from live.store.ids import hash_api_key, new_api_key_secret, new_id
from live.store.models import ApiKey, Scope
from live.store.sqlite.connection import SqliteConnection, time_or_none
from live.store.times import from_storage, to_storage, utcnow


class SqliteApiKeys(SqliteConnection, ApiKeyStore):
    async def create_api_key(self, name: str, scope: Scope) -> tuple[ApiKey, str]:
        plaintext = new_api_key_secret()
        return await self._insert_api_key(plaintext, name, scope), plaintext

    async def ensure_api_key(self, plaintext: str, name: str, scope: Scope) -> ApiKey:
        existing = await self._api_key_by_hash(hash_api_key(plaintext))
        if existing:
            return existing
        return await self._insert_api_key(plaintext, name, scope, or_ignore=True)

    async def _insert_api_key(
        self, plaintext: str, name: str, scope: Scope, *, or_ignore: bool = False
    ) -> ApiKey:
        check_scope(scope)
        key = ApiKey(id=new_id("ak"), name=name, scope=scope, key_hash=hash_api_key(plaintext))
        verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
        await self._write(
            f"{verb} INTO api_keys (id, name, scope, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (key.id, key.name, key.scope, key.key_hash, to_storage(key.created_at)),
        )
        if or_ignore:  # a concurrent ensure may have won the race: answer with its row
            stored = await self._api_key_by_hash(key.key_hash)
            assert stored is not None
            return stored
        return key

    async def _api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self._one("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return _api_key(row) if row else None

    async def verify_api_key(self, plaintext: str) -> ApiKey | None:
        if not plaintext:
            return None
        digest = hash_api_key(plaintext)
        key = await self._api_key_by_hash(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            await self._write(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (to_storage(now), key.id)
            )
            key.last_used_at = now
        return key

    async def get_api_key(self, api_key_id: str) -> ApiKey | None:
        row = await self._one("SELECT * FROM api_keys WHERE id = ?", (api_key_id,))
        return _api_key(row) if row else None

    async def list_api_keys(self, page: int = 1, page_size: int = 20) -> tuple[list[ApiKey], int]:
        check_page(page, page_size)
        total = (await self._one("SELECT COUNT(*) FROM api_keys"))[0]
        rows = await self._all(
            "SELECT * FROM api_keys ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            (page_size, (page - 1) * page_size),
        )
        return [_api_key(r) for r in rows], total

    async def delete_api_key(self, api_key_id: str) -> bool:
        return await self._write("DELETE FROM api_keys WHERE id = ?", (api_key_id,)) > 0

    async def count_api_keys(self) -> int:
        return (await self._one("SELECT COUNT(*) FROM api_keys"))[0]


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scope=row["scope"],
        key_hash=row["key_hash"],
        created_at=from_storage(row["created_at"]),
        last_used_at=time_or_none(row["last_used_at"]),
    )
