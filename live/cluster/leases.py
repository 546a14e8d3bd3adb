"""Stream leases in Redis: one node publishes a stream at a time, cluster-wide.

A lease is a key `live:lease:{livestream_id}` holding `node_id token active_at`,
with a time to live (`ttl_s`, 5 s by default). Its holder renews every `renew_s`
(1 s): the renewal also publishes when the publisher last sent media, which is what
another node's `stale` takeover rule reads. A node that dies stops renewing, so its
leases are gone within `ttl_s`. Tokens come from one counter per stream and only
grow: they fence the holder's session writes.

Every step that reads and then writes is one Lua script, so two nodes racing for
one stream cannot both win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from live.broadcast.leases import Holder, Lease, LeaseBusy, LeaseUnavailable, TakeoverRule

log = logging.getLogger(__name__)

PREFIX = "live:lease:"

# KEYS: lease, token counter. ARGV: node, ttl_ms, active_at, expected_token ("" = only
# when free). Returns {1, token} when granted, else {0, holder value}.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= '' then
  local token = string.match(current, '^%S+ (%d+) ')
  if ARGV[4] == '' or token ~= ARGV[4] then
    return {0, current}
  end
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token .. ' ' .. ARGV[3], 'PX', ARGV[2])
return {1, token}
"""

# KEYS: lease, token counter. ARGV: node, token, ttl_ms, active_at. Returns 1 when
# renewed, 2 when the lease had expired and this node took it back (same token,
# which stays the newest as nobody took it), 0 when another node holds it now.
_RENEW = """
local current = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. ' ' .. ARGV[2] .. ' '
if current then
  if string.sub(current, 1, string.len(mine)) ~= mine then return 0 end
  redis.call('SET', KEYS[1], mine .. ARGV[4], 'PX', ARGV[3])
  return 1
end
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
if latest > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], mine .. ARGV[4], 'PX', ARGV[3])
return 2
"""

# KEYS: lease. ARGV: node, token. Deletes only our own lease.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1] .. ' ' .. ARGV[2] .. ' '))
    == ARGV[1] .. ' ' .. ARGV[2] .. ' ' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def _parse(value: bytes | str) -> tuple[Holder, str]:
    """A lease's value, "NODE TOKEN ACTIVE_AT": its holder and its fencing token."""
    text = value.decode() if isinstance(value, bytes) else value
    node_id, token, active_at = text.split(" ")
    return Holder(node_id, float(active_at)), token


def _holder(value: bytes | str) -> Holder:
    return _parse(value)[0]


class RedisLeases:
    """StreamLeases of one node in a cluster."""

    def __init__(
        self, redis: Redis, node_id: str, *, ttl_s: float = 5.0, renew_s: float = 1.0
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.ttl_ms = int(ttl_s * 1000)
        self.renew_s = renew_s
        self.held: dict[str, Lease] = {}
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._lost_tasks: set[asyncio.Task[None]] = set()

    async def acquire(
        self,
        livestream_id: str,
        *,
        may_take_over: TakeoverRule,
        on_lost: Callable[[str], Awaitable[None]] | None = None,
    ) -> Lease:
        keys = [PREFIX + livestream_id, PREFIX + livestream_id + ":token"]
        now = f"{time.time():.3f}"
        displaced = None
        try:
            granted, value = await self._acquire(keys, [self.node_id, self.ttl_ms, now, ""])
            if not granted:
                holder, token = _parse(value)
                if holder.node_id != self.node_id and not may_take_over(holder):
                    raise LeaseBusy(holder)
                granted, value = await self._acquire(keys, [self.node_id, self.ttl_ms, now, token])
                if not granted:  # someone else won the race for it
                    raise LeaseBusy(_holder(value))
                log.info("stream %s: taken over from node %s", livestream_id, holder.node_id)
                displaced = holder
        except RedisError as error:
            raise LeaseUnavailable(str(error)) from error
        lease = Lease(livestream_id, int(value), on_lost, active_at=float(now), displaced=displaced)
        self.held[livestream_id] = lease
        self._ensure_renewing()
        return lease

    def touch(self, lease: Lease, active_at: float) -> None:
        lease.active_at = active_at

    async def release(self, lease: Lease) -> None:
        if self.held.get(lease.livestream_id) is lease:
            del self.held[lease.livestream_id]
        with contextlib.suppress(RedisError):
            await self._release([PREFIX + lease.livestream_id], [self.node_id, lease.token])

    async def held_anywhere(self, livestream_id: str) -> bool:
        return bool(await self.redis.exists(PREFIX + livestream_id))

    async def holder(self, livestream_id: str) -> Holder | None:
        value = await self.redis.get(PREFIX + livestream_id)
        return _holder(value) if value else None

    async def claim_orphan(self, session_id: str) -> bool:
        return bool(
            await self.redis.set(f"live:orphan:{session_id}", self.node_id, nx=True, ex=86400)
        )

    # -- renewal ---------------------------------------------------------------------

    def _ensure_renewing(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._renew_loop(), name="lease-renewal")

    async def renew_all(self) -> None:
        """Renew every lease once; a lease another node holds now is given up."""
        for livestream_id, lease in list(self.held.items()):
            keys = [PREFIX + livestream_id, PREFIX + livestream_id + ":token"]
            args = [self.node_id, lease.token, self.ttl_ms, f"{lease.active_at:.3f}"]
            outcome = await self._renew(keys, args)
            if outcome == 2:
                log.warning("stream %s: lease had expired; taken back", livestream_id)
            elif outcome == 0 and self.held.get(livestream_id) is lease:
                del self.held[livestream_id]
                lease.lost = True
                if lease.on_lost is not None:
                    task = asyncio.create_task(lease.on_lost("another node holds it now"))
                    self._lost_tasks.add(task)
                    task.add_done_callback(self._lost_tasks.discard)

    async def _renew_loop(self) -> None:
        while self.held:
            await asyncio.sleep(self.renew_s)
            try:
                await self.renew_all()
            except (RedisError, OSError) as error:
                # Streams keep flowing; the lease is taken back (or yielded) when
                # Redis answers again.
                log.warning("lease renewal failed (%s); retrying", error)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for lease in list(self.held.values()):
            await self.release(lease)
