"""Rate limits on /v1: a token bucket per API key (and, for requests that fail to
authenticate, per client address), with the X-RateLimit-* headers on every answer.
Routes marked `unmetered` (tus chunks, `route_marks.py`) spend no token.

Headers: `X-RateLimit-Limit` the bucket size, `X-RateLimit-Remaining` requests
left now, `X-RateLimit-Reset` seconds until the bucket is full again; a 429
`rate_limited` also carries `Retry-After` (seconds until one request is allowed).
`RateLimiter` keeps the buckets in memory, per process; `RedisRateLimiter`
(`ratelimit_redis.py`) in Redis, shared by a cluster's nodes. Both are `Limiter`s.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from live.api.errors import ApiError, error_middleware
from live.api.route_marks import is_unmetered
from live.api.state import API_KEY

MAX_BUCKETS = 100_000  # least recently used buckets beyond this are forgotten (= full)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until full
    retry_after_s: int  # until one token, when refused

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class Limiter(Protocol):
    """What the middlewares need: a bucket's state, and a token from it. Coroutines,
    so that a limiter may keep its buckets elsewhere."""

    async def peek(self, key: object) -> Verdict: ...

    async def take(self, key: object) -> Verdict: ...


class RateLimiter:
    """`per_minute` requests a minute on average, bursts up to `burst`."""

    def __init__(
        self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("per_minute and burst must be positive")
        self.capacity = burst
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()

    async def peek(self, key: object) -> Verdict:
        """The bucket's state without taking from it."""
        return self._verdict(self._refill(key), allowed=True)

    async def take(self, key: object) -> Verdict:
        bucket = self._refill(key)
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        return self._verdict(bucket, allowed=allowed)

    def _refill(self, key: object) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.capacity), now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def _verdict(self, bucket: _Bucket, *, allowed: bool) -> Verdict:
        return bucket_verdict(self.capacity, self.rate, bucket.tokens, allowed=allowed)


def bucket_verdict(capacity: int, rate: float, tokens: float, *, allowed: bool) -> Verdict:
    """The answer for a bucket of `capacity` refilled at `rate` a second holding
    `tokens` (shared by the in-memory and the Redis limiter)."""
    missing = capacity - tokens
    return Verdict(
        allowed=allowed,
        limit=capacity,
        remaining=int(tokens),
        reset_s=math.ceil(missing / rate) if missing > 0 else 0,
        retry_after_s=max(1, math.ceil((1.0 - tokens) / rate)),
    )


def _limited(verdict: Verdict) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"Too many requests: the limit is {verdict.limit} in a burst; "
        f"retry after {verdict.retry_after_s} s",
        headers=verdict.headers(),
    )


def key_rate_limit_middleware(limiter: Limiter) -> Middleware:
    """After auth: one bucket per API key. Errors below are turned into answers here
    so that they carry the headers too."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.get(API_KEY)  # None on a public route asked for without one:
        # its own bucket per address, apart from the one failed keys spend
        bucket = ("key", key.id) if key else ("public", request.remote or "")
        # a piece of a transfer (tus PATCH) is not a request of its own: it is told
        # where the bucket stands, and spends nothing
        verdict = await (limiter.peek(bucket) if is_unmetered(request) else limiter.take(bucket))
        if not verdict.allowed:
            raise _limited(verdict)
        response = await error_middleware(request, handler)
        response.headers.update(verdict.headers())
        return response

    return middleware


def anonymous_rate_limit_middleware(limiter: Limiter) -> Middleware:
    """Before auth: requests that fail to authenticate spend their address's bucket
    (so guessing keys is slow), and their 401 carries that bucket's headers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        address = ("addr", request.remote or "")
        state = await limiter.peek(address)
        if state.remaining < 1:
            raise _limited(await limiter.take(address))
        try:
            return await handler(request)
        except ApiError as exc:
            if exc.status == 401:
                exc.headers.update((await limiter.take(address)).headers())
            raise

    return middleware
