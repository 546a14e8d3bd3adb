"""Which nodes are alive and how to reach them: `live:node:{id}` holds a node's HTTP
base URL and expires unless the node refreshes it, so a dead node drops out."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class NodeRegistry:
    def __init__(self, redis: Redis, node_id: str, url: str, *, ttl_s: float = 5.0) -> None:
        self.redis = redis
        self.node_id = node_id
        self.url = url.rstrip("/")
        self.ttl_s = ttl_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._announce()
        self._task = asyncio.create_task(self._heartbeat(), name="node-heartbeat")

    async def _announce(self) -> None:
        await self.redis.set(f"live:node:{self.node_id}", self.url, px=int(self.ttl_s * 1000))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 5)
            try:
                await self._announce()
            except RedisError as error:
                log.warning("node heartbeat failed: %s", error)

    async def url_of(self, node_id: str) -> str | None:
        value = await self.redis.get(f"live:node:{node_id}")
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(f"live:node:{self.node_id}")
