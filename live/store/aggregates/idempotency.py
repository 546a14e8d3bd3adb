"""Idempotency keys: the first answer to a POST, replayed for its repeats."""

from __future__ import annotations

import abc
from datetime import datetime

from live.store.models import IdempotentAnswer


class IdempotencyStore(abc.ABC):
    """Answers by (API key id, Idempotency-Key), kept until purged."""

    @abc.abstractmethod
    async def get_idempotent_answer(
        self, api_key_id: str, key: str, not_before: datetime
    ) -> IdempotentAnswer | None:
        """The stored answer for this key, unless it was stored before `not_before`."""

    @abc.abstractmethod
    async def put_idempotent_answer(self, answer: IdempotentAnswer) -> None:
        """Store (or replace) the answer for (api_key_id, key)."""

    @abc.abstractmethod
    async def purge_idempotent_answers(self, before: datetime) -> int:
        """Forget answers stored before `before`."""
