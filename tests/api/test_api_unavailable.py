"""While a cluster's Redis cannot be reached, the API says so: 503 `unavailable` with
Retry-After, never a 500 or a hang."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import URLS, RecordingControl
from redis.asyncio import Redis

from live.api import build_api, request_id_middleware
from live.api.ratelimit_redis import RedisRateLimiter
from live.store.errors import StoreUnavailable
from live.store.redis import RedisStore


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
async def unreachable() -> RedisStore:
    client = Redis(port=_closed_port(), decode_responses=True, socket_connect_timeout=1)
    store = RedisStore(client)
    yield store
    await store.close()


async def test_every_store_call_raises_store_unavailable(unreachable: RedisStore) -> None:
    with pytest.raises(StoreUnavailable):
        await unreachable.get_livestream("ls_x")
    with pytest.raises(StoreUnavailable):
        await unreachable.verify_api_key("lk_anything")


async def test_the_api_answers_503_with_retry_after(unreachable: RedisStore) -> None:
    root = web.Application(middlewares=[request_id_middleware])
    root.add_subapp("/v1", build_api(store=unreachable, control=RecordingControl(), urls=URLS))
    async with TestClient(TestServer(root)) as client:
        for method, path in (("GET", "/v1/livestreams"), ("POST", "/v1/livestreams")):
            response = await client.request(
                method, path, headers={"X-API-Key": "lk_whatever"}, json={"name": "x"}
            )
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == "2"
            body = await response.json()
            assert body["error"]["code"] == "unavailable"


async def test_the_shared_rate_limiter_says_unavailable_too() -> None:
    client = Redis(port=_closed_port(), socket_connect_timeout=1)
    limiter = RedisRateLimiter(client, per_minute=60, burst=5)
    try:
        with pytest.raises(StoreUnavailable):
            await limiter.take("key:x")
    finally:
        await client.aclose()
