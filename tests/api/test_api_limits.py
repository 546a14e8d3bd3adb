"""Rate limits, CORS and Idempotency-Key on /v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import URLS

from live.api import build_api, request_id_middleware
from live.api.ratelimit import RateLimiter
from live.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(store: SqliteStore, control: Any, clock: Clock) -> AsyncIterator[TestClient]:
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    api = build_api(
        store=store,
        control=control,
        urls=URLS,
        rate_limiter=limiter,
        cors_origins=["https://admin.example.com"],
    )
    root = web.Application(middlewares=[request_id_middleware])
    root.add_subapp("/v1", api)
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


async def test_rate_limit_headers_and_429(
    client: TestClient, admin: dict, clock: Clock, error: Any
) -> None:
    remaining = []
    for _ in range(3):
        response = await client.get("/v1/livestreams", headers=admin)
        assert response.status == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert int(response.headers["X-RateLimit-Reset"]) >= 1
    assert remaining == [2, 1, 0]
    response = await client.get("/v1/livestreams", headers=admin)
    await error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    clock.now += 1.0  # one request a second comes back
    assert (await client.get("/v1/livestreams", headers=admin)).status == 200


async def test_the_public_openapi_is_limited_per_address(
    client: TestClient, admin: dict, error: Any
) -> None:
    for remaining in ("2", "1", "0"):
        response = await client.get("/v1/openapi.json")
        assert response.status == 200
        assert response.headers["X-RateLimit-Remaining"] == remaining
    await error(await client.get("/v1/openapi.json"), 429, "rate_limited")
    assert (await client.get("/v1/livestreams", headers=admin)).status == 200  # its own bucket


async def test_errors_carry_the_headers_too(client: TestClient, admin: dict, error: Any) -> None:
    for path in ("/v1/livestreams/ls_nope", "/v1/no-such-route"):
        response = await client.get(path, headers=admin)
        assert response.status == 404
        assert "X-RateLimit-Remaining" in response.headers
    response = await client.post("/v1/livestreams", data=b"{", headers=admin)
    await error(response, 400, "invalid_json")
    assert "X-RateLimit-Limit" in response.headers


async def test_keys_have_their_own_buckets(client: TestClient, admin: dict, reader: dict) -> None:
    for _ in range(3):
        await client.get("/v1/livestreams", headers=admin)
    assert (await client.get("/v1/livestreams", headers=admin)).status == 429
    assert (await client.get("/v1/livestreams", headers=reader)).status == 200


async def test_failed_authentication_is_limited_by_address(client: TestClient, error: Any) -> None:
    for _ in range(3):
        response = await client.get("/v1/livestreams", headers={"X-API-Key": "lk_wrong"})
        await error(response, 401, "unauthorized")
        assert "X-RateLimit-Remaining" in response.headers
    response = await client.get("/v1/livestreams", headers={"X-API-Key": "lk_wrong"})
    await error(response, 429, "rate_limited")


async def test_cors_preflight_and_headers(client: TestClient, admin: dict) -> None:
    origin = {"Origin": "https://admin.example.com"}
    preflight = await client.options(
        "/v1/livestreams",
        headers={**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key, content-type"},
    )  # fmt: skip
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    response = await client.get("/v1/livestreams", headers={**admin, **origin})
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "X-RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    denied = await client.get("/v1/livestreams", headers={**origin, "X-API-Key": "lk_bad"})
    assert denied.status == 401
    assert denied.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"


async def test_cors_ignores_other_origins(client: TestClient, admin: dict) -> None:
    response = await client.get(
        "/v1/livestreams", headers={**admin, "Origin": "https://evil.example"}
    )
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_no_cors_when_not_configured(store: SqliteStore, control: Any, admin: dict) -> None:
    root = web.Application()
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS))
    async with TestClient(TestServer(root)) as client:
        response = await client.get(
            "/v1/livestreams", headers={**admin, "Origin": "https://admin.example.com"}
        )
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "X-RateLimit-Limit" not in response.headers  # no limiter: no limit headers


async def test_idempotency_key_replays_the_first_answer(
    store: SqliteStore, control: Any, admin: dict, error: Any
) -> None:
    root = web.Application()
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS))
    async with TestClient(TestServer(root)) as client:
        headers = {**admin, "Idempotency-Key": "create-show-1"}
        first = await client.post("/v1/livestreams", json={"name": "show"}, headers=headers)
        second = await client.post("/v1/livestreams", json={"name": "show"}, headers=headers)
        assert first.status == second.status == 201
        assert (await first.json())["id"] == (await second.json())["id"]
        assert second.headers["Idempotent-Replayed"] == "true"
        assert (await store.list_livestreams())[1] == 1  # created once
        other = await client.post("/v1/livestreams", json={"name": "other"}, headers=headers)
        await error(other, 422, "idempotency_key_reused", "Idempotency-Key")
        # errors are replayed too (not acting twice), except 5xx
        bad = {**admin, "Idempotency-Key": "bad-1"}
        one = await client.post("/v1/livestreams", json={}, headers=bad)
        two = await client.post("/v1/livestreams", json={}, headers=bad)
        assert one.status == two.status == 400
        # without the header, two POSTs are two livestreams
        await client.post("/v1/livestreams", json={"name": "a"}, headers=admin)
        await client.post("/v1/livestreams", json={"name": "a"}, headers=admin)
        assert (await store.list_livestreams())[1] == 3
        response = await client.post(
            "/v1/livestreams", json={"name": "x"}, headers={**admin, "Idempotency-Key": "a b"}
        )
        await error(response, 400, "invalid_parameter_value", "Idempotency-Key")


async def test_idempotency_keys_are_per_api_key(
    store: SqliteStore, control: Any, admin: dict
) -> None:
    _, other_key = await store.create_api_key("other", "admin")
    root = web.Application()
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS))
    async with TestClient(TestServer(root)) as client:
        for key in (admin["X-API-Key"], other_key):
            headers = {"X-API-Key": key, "Idempotency-Key": "same"}
            response = await client.post("/v1/livestreams", json={"name": "s"}, headers=headers)
            assert response.status == 201
            assert "Idempotent-Replayed" not in response.headers
        assert (await store.list_livestreams())[1] == 2
