"""Wrong API keys from one address: slowed, then refused with 429 and Retry-After
(a right key from there too, for a while), counted; requests without a key and
other addresses are untouched."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import URLS, expect_error
from test_api_limits import Clock

from live.api import build_api, request_id_middleware
from live.attempts import AttemptGuard, GuardSettings

GUARD = GuardSettings(
    slow_after=2, refuse_after=4, refuse_for_s=90, delay_s=0.001, max_delay_s=0.001
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttled() -> Counter[tuple[str, str]]:
    return Counter()


@pytest.fixture
async def guarded(store, control, clock, throttled) -> AsyncIterator[TestClient]:
    root = web.Application(middlewares=[request_id_middleware])
    api = build_api(
        store=store, control=control, urls=URLS,
        key_guard=AttemptGuard(GUARD, clock=clock), throttled=throttled,
    )  # fmt: skip
    root.add_subapp("/v1", api)
    async with TestClient(TestServer(root)) as client:
        yield client


async def test_wrong_keys_are_slowed_then_refused_with_retry_after(
    guarded, admin, clock, throttled
) -> None:
    for attempt in range(4):
        response = await guarded.get("/v1/livestreams", headers={"X-API-Key": f"lk_guess{attempt}"})
        await expect_error(response, 401, "unauthorized")
    assert throttled[("api", "slowed")] == 2
    response = await guarded.get("/v1/livestreams", headers=admin)  # the right key, too
    await expect_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "90"
    assert throttled[("api", "refused")] == 1
    # Without a key there is nothing to guess: the plain 401 (and the public spec) stay.
    await expect_error(await guarded.get("/v1/livestreams"), 401, "unauthorized")
    assert (await guarded.get("/v1/openapi.json")).status == 200

    clock.now += 90  # the refusal ends
    assert (await guarded.get("/v1/livestreams", headers=admin)).status == 200


async def test_right_keys_never_count(guarded, admin, throttled) -> None:
    for _ in range(10):
        assert (await guarded.get("/v1/livestreams", headers=admin)).status == 200
    assert not throttled


async def test_a_read_key_refused_a_write_is_no_guess(guarded, reader, throttled) -> None:
    for _ in range(6):
        response = await guarded.post("/v1/livestreams", json={"name": "x"}, headers=reader)
        await expect_error(response, 403, "forbidden")
    assert (await guarded.get("/v1/livestreams", headers=reader)).status == 200
    assert not throttled
