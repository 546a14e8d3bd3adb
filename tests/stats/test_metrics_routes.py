"""The request-latency histogram files each request under its kind of route; the
event loop's task count is exported."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.limits import LIMITS, LimitHits
from live.stats.metrics import Metrics


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _count(metrics: Metrics, route: str) -> float:
    value = metrics.registry.get_sample_value(
        "live_http_request_duration_seconds_count", {"route": route}
    )
    return value or 0.0


async def test_requests_are_timed_by_route_kind_from_the_raw_target() -> None:
    metrics = Metrics()
    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_get("/v1/livestreams", _ok)
    app.router.add_get("/live/{playback_id}/{name}", _ok)
    app.router.add_get("/live/{playback_id}/{player}/{name}", _ok)
    app.router.add_get("/healthz", _ok)
    async with TestClient(TestServer(app)) as client:
        for n in range(3):  # every viewer's URL differs by its player id
            assert (await client.get(f"/live/pb_1/pl_{n}/source.m3u8")).status == 200
        assert (await client.get("/live/pb_1/a%20b.m4s")).status == 200
        assert (await client.get("/v1/livestreams?page=2")).status == 200
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/nowhere")).status == 404  # timed too
    assert (_count(metrics, "hls"), _count(metrics, "api"), _count(metrics, "other")) == (
        4.0,
        1.0,
        2.0,
    )


def test_limit_refusals_are_counted_by_setting_name_every_limit_listed() -> None:
    hits = LimitHits()
    metrics = Metrics(hits)
    hits.hit("max_viewers", "refused")
    hits.hit("max_viewers", "refused")
    hits.hit("rtmp_handshake_timeout_s", "dropped")

    def sample(limit: str) -> float | None:
        return metrics.registry.get_sample_value("live_limit_refusals_total", {"limit": limit})

    assert sample("max_viewers") == 2.0
    assert sample("rtmp_handshake_timeout_s") == 1.0
    assert all(sample(limit) is not None for limit in LIMITS)  # each from the start
    assert sample("max_publishers") == 0.0


async def test_the_event_loop_s_tasks_are_counted() -> None:
    metrics = Metrics()
    before = metrics.registry.get_sample_value("live_asyncio_tasks")
    sleepers = [asyncio.create_task(asyncio.sleep(30)) for _ in range(5)]
    try:
        assert metrics.registry.get_sample_value("live_asyncio_tasks") == before + 5
    finally:
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
    assert metrics.registry.get_sample_value("live_asyncio_tasks") == before
