"""Commands between nodes over Redis pub/sub.

A ban, delete, key reset or disconnect reaches the API of any node; the publisher
is on the node that holds the stream's lease. The API's node publishes the command
and every node acts on it if it runs the stream. Pub/sub may drop a message (a node
reconnecting at that moment): the store stays the truth, and the owner's audit
(`StreamManager.audit`, every second in a cluster) still ends a banned, deleted or
re-keyed stream. A plain disconnect has no trace in the store and is the one command
a lost message would lose.

The same channel carries what each node knows of its live streams every few seconds
(`share`: the live sessions by livestream id, the viewer reports by playback id), so
any node can answer `current_session` and `/players` for a stream another node runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "live:commands"
# Snapshots older than this are dropped (their stream ended or moved long ago).
_FORGET_S = 60.0

CommandHandler = Callable[[str, str], Awaitable[bool]]


class CommandBus:
    def __init__(self, redis: Redis, node_id: str, on_disconnect: CommandHandler) -> None:
        self.redis = redis
        self.node_id = node_id
        self.on_disconnect = on_disconnect
        # kind ("sessions", "viewers") -> id -> (received at, snapshot), from other nodes
        self.snapshots: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="command-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def disconnect(self, livestream_id: str, end_reason: str) -> None:
        await self._publish({"type": "disconnect", "id": livestream_id, "reason": end_reason})

    async def share(self, kind: str, items: dict[str, dict[str, Any]]) -> None:
        """Tell the other nodes this node's current `items` of one kind."""
        if items:
            await self._publish({"type": "share", "kind": kind, "items": items})

    def snapshot(self, kind: str, key: str, max_age_s: float) -> dict[str, Any] | None:
        """What another node last shared under `kind` and `key`, if recent enough."""
        entry = self.snapshots.get(kind, {}).get(key)
        if entry is None or time.monotonic() - entry[0] > max_age_s:
            return None
        return entry[1]

    async def _publish(self, message: dict[str, Any]) -> None:
        message["from"] = self.node_id
        await self.redis.publish(CHANNEL, json.dumps(message))

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._ready.set()
                async for message in pubsub.listen():
                    await self._handle(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                log.warning("command bus: %s; resubscribing", error)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _handle(self, message: dict[str, Any]) -> None:
        try:
            body = json.loads(message["data"])
            kind = body["type"]
            if kind == "disconnect":
                await self.on_disconnect(str(body["id"]), str(body["reason"]))
            elif kind == "share" and body.get("from") != self.node_id:
                now = time.monotonic()
                cache = self.snapshots.setdefault(str(body["kind"]), {})
                for key, snapshot in body["items"].items():
                    cache[key] = (now, snapshot)
                for key in [k for k, (at, _) in cache.items() if now - at > _FORGET_S]:
                    del cache[key]
        except Exception:
            log.exception("command bus: could not handle a message")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
