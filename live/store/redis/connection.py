"""What every part of `RedisStore` shares: the client, the key names, the scripts,
and the generic operations on top of `lua.py`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from live.store.redis import lua
from live.store.redis.codec import encode_fields, from_hash, pairs_to_dict, to_hash
from live.store.redis.keys import Keys
from live.store.times import to_storage

R = TypeVar("R")


def changes_args(values: dict[str, Any]) -> list[str]:
    """Field changes as the scripts take them: a count, the pairs to set, the names
    to delete (a None value clears the field)."""
    to_set, to_delete = encode_fields(values)
    args: list[str] = [str(len(to_set))]
    for name, text in to_set.items():
        args += [name, text]
    return args + to_delete


def raise_if_exists(error: ResponseError, record_id: str) -> None:
    """A script's EXISTS error as the ValueError both stores raise for a taken id."""
    if str(error) == "EXISTS":
        raise ValueError(f"{record_id} exists already") from None


class RedisConnection:
    """A `redis.asyncio.Redis` client made with `decode_responses=True`."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._scripts: dict[str, AsyncScript] = {}

    async def close(self) -> None:
        await self._redis.aclose()

    async def _run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script (EVALSHA, loading it on first use)."""
        runner = self._scripts.get(source)
        if runner is None:
            runner = self._scripts[source] = self._redis.register_script(source)
        return await runner(keys=keys, args=[self._keys.prefix, *args])

    async def _get(self, cls: type[R], key: str) -> R | None:
        fields = await self._redis.hgetall(key)
        return from_hash(cls, fields) if fields else None

    async def _insert(
        self,
        record: Any,
        key: str,
        *,
        stamp: datetime,
        indexes: list[str],
        lookups: Sequence[str] = (),
        only_new: bool = False,
        own_fields: dict[str, str] | None = None,
    ) -> str | None:
        """Write a new record with its index entries and lookups in one step. With
        `only_new`, nothing is written if the first lookup exists: its id is answered.
        `own_fields` ("_name": text) go into the hash beside the record's."""
        try:
            answer = await self._run(
                lua.INSERT,
                [key, self._keys.seq, *indexes, *lookups],
                [to_storage(stamp), record.id, len(indexes), "1" if only_new else "0",
                 *changes_args({**to_hash(record), **(own_fields or {})})],
            )  # fmt: skip
        except ResponseError as exc:
            raise_if_exists(exc, record.id)
            raise
        return answer[1] if len(answer) > 1 else None

    async def _update(self, cls: type[R], key: str, values: dict[str, Any]) -> R | None:
        flat = await self._run(lua.UPDATE, [key], changes_args(values))
        return from_hash(cls, pairs_to_dict(flat)) if flat else None

    async def _lookup(self, cls: type[R], lookup_key: str, record_prefix: str) -> R | None:
        flat = await self._run(lua.LOOKUP, [lookup_key], [record_prefix])
        return from_hash(cls, pairs_to_dict(flat)) if flat else None

    async def _page(
        self,
        cls: type[R],
        index: str,
        record_prefix: str,
        page: int,
        page_size: int,
        *,
        before: datetime | None = None,
        field_in: tuple[str, Sequence[str]] | None = None,
    ) -> tuple[list[R], int]:
        """A page of an ordered index, newest first, with the total (see `lua.PAGE`),
        of the records created before `before` whose `field_in[0]` is one of `field_in[1]`."""
        upper = "(" + to_storage(before) if before is not None else "+"
        field_args = [field_in[0], *field_in[1]] if field_in is not None else []
        answer = await self._run(
            lua.PAGE,
            [index],
            [record_prefix, (page - 1) * page_size, page_size, upper, *field_args],
        )
        return records_of(cls, answer)


def records_of(cls: type[R], answer: list[Any]) -> tuple[list[R], int]:
    """`{total, record...}` from a paging script -> (records, total)."""
    return [from_hash(cls, pairs_to_dict(flat)) for flat in answer[1:]], answer[0]
