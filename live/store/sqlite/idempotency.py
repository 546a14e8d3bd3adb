"""SQLite part of the store: idempotency answers."""

from __future__ import annotations

from datetime import datetime

from live.store.aggregates.idempotency import IdempotencyStore
from live.store.models import IdempotentAnswer
from live.store.sqlite.connection import SqliteConnection
from live.store.times import from_storage, to_storage


class SqliteIdempotency(SqliteConnection, IdempotencyStore):
    async def get_idempotent_answer(
        self, api_key_id: str, key: str, not_before: datetime
    ) -> IdempotentAnswer | None:
        row = await self._one(
            "SELECT * FROM idempotency_keys WHERE api_key_id = ? AND key = ? AND created_at >= ?",
            (api_key_id, key, to_storage(not_before)),
        )
        if row is None:
            return None
        return IdempotentAnswer(
            api_key_id=row["api_key_id"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            status=row["status"],
            body=bytes(row["body"]),
            content_type=row["content_type"],
            created_at=from_storage(row["created_at"]),
        )

    async def put_idempotent_answer(self, answer: IdempotentAnswer) -> None:
        await self._write(
            "INSERT OR REPLACE INTO idempotency_keys (api_key_id, key, fingerprint, status,"
            " body, content_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                answer.api_key_id, answer.key, answer.fingerprint, answer.status, answer.body,
                answer.content_type, to_storage(answer.created_at),
            ),
        )  # fmt: skip

    async def purge_idempotent_answers(self, before: datetime) -> int:
        return await self._write(
            "DELETE FROM idempotency_keys WHERE created_at < ?", (to_storage(before),)
        )
