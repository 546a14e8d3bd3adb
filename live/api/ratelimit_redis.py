"""The rate limiter of a cluster: the token buckets of `ratelimit.py` kept in Redis,
so that every node spends from one budget per API key (or client address).

Each take is one Lua script (read the bucket, refill it for the time passed, take a
token, write it back), so two nodes never spend the same token, and the time is
Redis's own (`TIME`), so nodes with skewed clocks agree. An idle bucket expires
once it would be full again, which is what a missing bucket means.

A `Limiter` with the same answers as `RateLimiter`: `build_api(rate_limiter=...)`
takes either.
"""

from __future__ import annotations

from redis.asyncio import Redis

from live.api.ratelimit import Verdict, bucket_verdict
from live.store.redis.unavailable import unavailable_when_unreachable

DEFAULT_PREFIX = "live:rate:"

# KEYS[1] the bucket; ARGV: capacity, refill a second, take ("1") or peek ("0").
# Answers {allowed (1/0), tokens left (text: a Lua number would be truncated)}.
_TAKE = """
local capacity, rate, take = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens = capacity
local f = redis.call('HMGET', KEYS[1], 'tokens', 'at')
if f[1] then
    tokens = math.min(capacity, tonumber(f[1]) + math.max(0, now - tonumber(f[2])) * rate)
end
local allowed = 0
if take then
    if tokens >= 1 then
        tokens = tokens - 1
        allowed = 1
    end
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
        'at', string.format('%.6f', now))
    redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
end
return {allowed, string.format('%.6f', tokens)}
"""


@unavailable_when_unreachable  # Redis down: 503 `unavailable`, as for the store
class RedisRateLimiter:
    """`per_minute` requests a minute on average, bursts up to `burst`, per key,
    shared by every limiter on the same Redis and prefix. `client` may be made with
    or without `decode_responses`."""

    def __init__(
        self, client: Redis, per_minute: int, burst: int, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("per_minute and burst must be positive")
        self.capacity = burst
        self.rate = per_minute / 60.0
        self.prefix = prefix
        self._script = client.register_script(_TAKE)

    async def peek(self, key: object) -> Verdict:
        """The bucket's state without taking from it."""
        return await self._call(key, take=False)

    async def take(self, key: object) -> Verdict:
        return await self._call(key, take=True)

    async def _call(self, key: object, *, take: bool) -> Verdict:
        allowed, tokens = await self._script(
            keys=[self.prefix + _bucket_name(key)],
            args=[self.capacity, repr(self.rate), "1" if take else "0"],
        )
        return bucket_verdict(
            self.capacity, self.rate, float(tokens), allowed=bool(allowed) or not take
        )


def _bucket_name(key: object) -> str:
    """("key", "ak_1") -> "key:ak_1", as the middlewares name buckets."""
    if isinstance(key, tuple):
        return ":".join(str(part) for part in key)
    return str(key)
