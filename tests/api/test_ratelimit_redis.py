"""The Redis rate limiter on a real redis-server: limiters on separate connections
(as on separate nodes) spend from one budget per key, with the in-memory limiter's
answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import URLS
from redis.asyncio import Redis

from live.api import build_api
from live.api.ratelimit import RateLimiter
from live.api.ratelimit_redis import RedisRateLimiter
from live.store import SqliteStore


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    first = Redis.from_url(redis_url, decode_responses=True)
    second = Redis.from_url(redis_url)  # either kind of client works
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


async def test_two_nodes_share_one_budget(clients: tuple[Redis, Redis]) -> None:
    a = RedisRateLimiter(clients[0], per_minute=1, burst=5)
    b = RedisRateLimiter(clients[1], per_minute=1, burst=5)
    key = ("key", "ak_1")
    remaining = []
    for limiter in (a, b, a, b, a):
        verdict = await limiter.take(key)
        assert verdict.allowed and verdict.limit == 5
        remaining.append(verdict.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    for limiter in (a, b):
        refused = await limiter.take(key)
        assert not refused.allowed and refused.remaining == 0
        assert refused.retry_after_s >= 1 and refused.reset_s >= 60
        assert refused.headers()["Retry-After"] == str(refused.retry_after_s)
    other = await b.take(("key", "ak_2"))  # another key, its own budget
    assert other.allowed and other.remaining == 4


async def test_racing_nodes_never_spend_a_token_twice(clients: tuple[Redis, Redis]) -> None:
    limiters = [RedisRateLimiter(client, per_minute=1, burst=20) for client in clients]
    verdicts = await asyncio.gather(
        *(limiter.take("addr:203.0.113.9") for _ in range(40) for limiter in limiters)
    )
    assert sum(v.allowed for v in verdicts) == 20


async def test_peek_takes_nothing_and_answers_like_the_memory_limiter(
    clients: tuple[Redis, Redis],
) -> None:
    shared = RedisRateLimiter(clients[0], per_minute=60, burst=3)
    local = RateLimiter(per_minute=60, burst=3)
    assert await shared.peek("k") == await local.peek("k")
    assert (await shared.peek("k")).remaining == 3
    await shared.take("k")
    await local.take("k")
    peeked, local_peeked = await shared.peek("k"), await local.peek("k")
    assert peeked.allowed and peeked.remaining == local_peeked.remaining == 2
    assert peeked.reset_s == local_peeked.reset_s == 1


async def test_a_bucket_refills_and_an_idle_one_expires(clients: tuple[Redis, Redis]) -> None:
    fast = RedisRateLimiter(clients[0], per_minute=60_000, burst=1)  # 1000 tokens a second
    assert (await fast.take("k")).allowed
    assert not (await fast.take("k")).allowed
    ttl_ms = await clients[0].pttl("live:rate:k")
    assert 0 < ttl_ms <= 1001 + 1  # forgotten once it would be full again (+1 s slack)
    await asyncio.sleep(0.01)  # 10 tokens' worth of time
    assert (await fast.take("k")).allowed


def test_rejects_a_non_positive_budget() -> None:
    with pytest.raises(ValueError):
        RedisRateLimiter(None, per_minute=0, burst=1)  # type: ignore[arg-type]


async def test_two_api_nodes_answer_429_from_one_shared_budget(
    clients: tuple[Redis, Redis], store: SqliteStore, control: Any, admin: dict, error: Any
) -> None:
    nodes = []
    for client in clients:
        root = web.Application()
        limiter = RedisRateLimiter(client, per_minute=1, burst=3)
        root.add_subapp(
            "/v1", build_api(store=store, control=control, urls=URLS, rate_limiter=limiter)
        )
        nodes.append(TestClient(TestServer(root)))
    for node in nodes:
        await node.start_server()
    try:
        remaining = []
        for node in (nodes[0], nodes[1], nodes[0]):
            response = await node.get("/v1/livestreams", headers=admin)
            assert response.status == 200
            remaining.append(response.headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        refused = await nodes[1].get("/v1/livestreams", headers=admin)
        await error(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
    finally:
        for node in nodes:
            await node.close()
