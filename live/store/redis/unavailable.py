"""Redis's connection errors, raised as the store's own `StoreUnavailable`, so that
the API can answer 503 without knowing which backend it talks to."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from live.store.errors import StoreUnavailable

T = TypeVar("T", bound=type)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except UNREACHABLE as error:
            raise StoreUnavailable(f"Redis is unreachable: {error}") from error

    return call


def unavailable_when_unreachable(cls: T) -> T:
    """Class decorator: every public coroutine method raises StoreUnavailable instead
    of Redis's connection errors."""
    for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction):
        if not name.startswith("_") and name != "open":
            setattr(cls, name, _guarded(member))
    return cls
