"""Redis part of the store: idempotency answers, one hash per (API key, key), with
`idem:age` ordering them by age for the purge."""

from __future__ import annotations

from datetime import datetime

from live.store.aggregates.idempotency import IdempotencyStore
from live.store.models import IdempotentAnswer
from live.store.redis.codec import to_hash
from live.store.redis.connection import RedisConnection
from live.store.redis.keys import to_micros
from live.store.redis.lua import script

# Forget answers stored before a time. ARGV: prefix, that time in µs. Answers how many.
_PURGE = script("""
local age = P .. 'idem:age'
local old = redis.call('ZRANGE', age, '-inf', '(' .. ARGV[2], 'BYSCORE')
for _, member in ipairs(old) do
    redis.call('DEL', P .. 'idem:' .. member)
    redis.call('ZREM', age, member)
end
return #old
""")


class RedisIdempotency(RedisConnection, IdempotencyStore):
    async def get_idempotent_answer(
        self, api_key_id: str, key: str, not_before: datetime
    ) -> IdempotentAnswer | None:
        answer = await self._get(IdempotentAnswer, self._keys.idempotent_answer(api_key_id, key))
        if answer is None or answer.created_at < not_before:
            return None
        return answer

    async def put_idempotent_answer(self, answer: IdempotentAnswer) -> None:
        key = self._keys.idempotent_answer(answer.api_key_id, answer.key)
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC: replaced whole
            pipe.delete(key)
            pipe.hset(key, mapping=to_hash(answer))
            pipe.zadd(
                self._keys.idempotency_age,
                {f"{answer.api_key_id}:{answer.key}": to_micros(answer.created_at)},
            )
            await pipe.execute()

    async def purge_idempotent_answers(self, before: datetime) -> int:
        return await self._run(_PURGE, [], [to_micros(before)])
