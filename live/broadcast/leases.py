"""Who may hold a live stream: the one-publisher rule across processes.

A node that accepts a publisher holds the stream's lease for as long as the
session lasts. On one node the lease is trivial (`LocalLeases`): the manager's own
table already says who publishes. In a cluster the lease lives in Redis
(`live.cluster.leases.RedisLeases`), so a publisher on another node is refused or
takes over by the same `publisher_takeover` rule as on one node, and a node that
dies loses its leases when they expire.

Every grant carries a fencing token that grows with each grant of the same stream:
session writes carry it, so a node that lost its lease without noticing cannot
overwrite what the new holder writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Holder:
    """Whoever holds a stream's lease, as another node sees it."""

    node_id: str
    # Unix time of the holder's last media (or of its connect), refreshed with the
    # lease: what the `stale` takeover rule reads across nodes.
    active_at: float


@dataclass(slots=True)
class Lease:
    livestream_id: str
    token: int
    # Called once when the lease is lost to another node (it took over, or this
    # node could not renew in time): the holder must stop publishing.
    on_lost: Callable[[str], Awaitable[None]] | None = None
    active_at: float = 0.0
    lost: bool = field(default=False)
    # Whom this grant displaced: a node that was silent (or dead) held the stream.
    # Its open session is left to it for a moment, then closed by the new holder.
    displaced: Holder | None = None


class LeaseBusy(Exception):
    """Another node holds the stream and may not be taken over."""

    def __init__(self, holder: Holder) -> None:
        super().__init__(f"held by node {holder.node_id}")
        self.holder = holder


class LeaseUnavailable(Exception):
    """The lease cannot be decided now (the cluster's Redis is unreachable)."""


TakeoverRule = Callable[[Holder], bool]


class StreamLeases(Protocol):
    node_id: str

    async def acquire(
        self,
        livestream_id: str,
        *,
        may_take_over: TakeoverRule,
        on_lost: Callable[[str], Awaitable[None]] | None = None,
    ) -> Lease:
        """Take the stream's lease, or raise LeaseBusy / LeaseUnavailable. A holder
        elsewhere is displaced only when `may_take_over(holder)` says so."""

    def touch(self, lease: Lease, active_at: float) -> None:
        """The publisher sent media at `active_at` (unix time); published with the
        next renewal."""

    async def release(self, lease: Lease) -> None:
        """Give the lease up (the session ended here)."""

    async def held_anywhere(self, livestream_id: str) -> bool:
        """Whether some live node holds the stream (recovery leaves those alone)."""

    async def claim_orphan(self, session_id: str) -> bool:
        """True for exactly one caller per orphaned session: the node that closes it."""


class LocalLeases:
    """One node: every lease is granted (the manager decides takeovers itself), and
    nothing another process holds survives a restart."""

    node_id = "local"

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        self._held: set[str] = set()

    async def acquire(
        self,
        livestream_id: str,
        *,
        may_take_over: TakeoverRule,
        on_lost: Callable[[str], Awaitable[None]] | None = None,
    ) -> Lease:
        self._held.add(livestream_id)
        return Lease(livestream_id, next(self._tokens), on_lost)

    def touch(self, lease: Lease, active_at: float) -> None:
        lease.active_at = active_at

    async def release(self, lease: Lease) -> None:
        self._held.discard(lease.livestream_id)

    async def held_anywhere(self, livestream_id: str) -> bool:
        return livestream_id in self._held

    async def claim_orphan(self, session_id: str) -> bool:
        return True
