"""This node's membership of a cluster: its Redis connection, id, URL, leases,
registry and command bus, built and closed together."""

from __future__ import annotations

import logging
import secrets
import socket
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from live.cluster.bus import CommandBus, CommandHandler
from live.cluster.leases import RedisLeases
from live.cluster.nodes import NodeRegistry

log = logging.getLogger(__name__)


def new_node_id() -> str:
    """Unique per process: a restarted node is a new node, and its old leases run out."""
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


def default_node_url(http_host: str, http_port: int) -> str:
    if http_host in ("", "0.0.0.0", "::"):
        http_host = socket.gethostname()
    if ":" in http_host:
        http_host = f"[{http_host}]"
    return f"http://{http_host}:{http_port}"


@dataclass(slots=True)
class ClusterMembership:
    redis: Redis
    node_id: str
    leases: RedisLeases
    nodes: NodeRegistry
    bus: CommandBus | None = None

    @classmethod
    def connect(cls, redis_url: str, node_url: str) -> ClusterMembership:
        redis = Redis.from_url(
            redis_url,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=10,
        )
        node_id = new_node_id()
        return cls(
            redis=redis,
            node_id=node_id,
            leases=RedisLeases(redis, node_id),
            nodes=NodeRegistry(redis, node_id, node_url),
        )

    async def start(self, on_disconnect: CommandHandler) -> None:
        """Announce this node and listen for commands (the handler is the stream
        manager's disconnect, which exists only after the leases it was built with)."""
        await self.nodes.start()
        self.bus = CommandBus(self.redis, self.node_id, on_disconnect)
        await self.bus.start()
        log.info("cluster node %s at %s", self.node_id, self.nodes.url)

    async def reachable(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
        await self.leases.close()
        await self.nodes.close()
        await self.redis.aclose()
