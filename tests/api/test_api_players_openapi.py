"""/players from the viewer tracker (or the history), and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import URLS

from live.api import build_api, request_id_middleware
from live.api.openapi import spec
from live.control import LiveSession
from live.store import SqliteStore
from live.store.models import Session
from live.store.times import utcnow


class FakeViewers:
    def __init__(self) -> None:
        self.reports: dict[str, dict[str, Any]] = {}
        self.asked: list[tuple[str, bool]] = []

    def report(self, playback_id: str, *, live: bool) -> dict[str, Any] | None:
        self.asked.append((playback_id, live))
        return self.reports.get(playback_id)


@pytest.fixture
def viewers() -> FakeViewers:
    return FakeViewers()


@pytest.fixture
async def client(
    store: SqliteStore, control: Any, viewers: FakeViewers
) -> AsyncIterator[TestClient]:
    root = web.Application(middlewares=[request_id_middleware])
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS, viewers=viewers))
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


async def test_players_of_a_live_stream(
    client: TestClient, admin: dict, store: SqliteStore, control: Any, viewers: FakeViewers
) -> None:
    ls = await store.create_livestream(name="show")
    await store.set_live(ls.id, True)
    session = Session(livestream_id=ls.id, protocol="rtmp")
    control.sessions[ls.id] = LiveSession(session=session)
    viewers.reports[ls.playback_id] = {
        "current_viewers": 2, "peak_viewers": 3, "total_views": 5, "unique_viewers": 4,
        "watch_time_s": 12.5, "bytes_out": 100, "renditions": {}, "players": [],
    }  # fmt: skip
    body = await (await client.get(f"/v1/livestreams/{ls.id}/players", headers=admin)).json()
    assert viewers.asked == [(ls.playback_id, True)]
    assert body["session_id"] == session.id
    assert (body["current_viewers"], body["peak_viewers"], body["total_views"]) == (2, 3, 5)


async def test_a_stream_the_store_calls_idle_is_not_asked_for_live_figures(
    client: TestClient, admin: dict, store: SqliteStore, control: Any, viewers: FakeViewers
) -> None:
    """A node may still hold another node's just-ended session for a moment; the
    store's idle wins, so every node answers from the same history."""
    ls = await store.create_livestream(name="show")
    control.sessions[ls.id] = LiveSession(session=Session(livestream_id=ls.id, protocol="rtmp"))
    await (await client.get(f"/v1/livestreams/{ls.id}/players", headers=admin)).json()
    assert viewers.asked == [(ls.playback_id, False)]


async def test_players_fall_back_to_the_last_session(
    client: TestClient, admin: dict, store: SqliteStore
) -> None:
    ls = await store.create_livestream(name="show")
    session = await store.create_session(Session(livestream_id=ls.id, protocol="srt"))
    await store.end_session(
        session.id, utcnow(), "publisher_disconnected", peak_viewers=7, total_views=9
    )
    body = await (await client.get(f"/v1/livestreams/{ls.id}/players", headers=admin)).json()
    assert body["session_id"] == session.id
    assert (body["current_viewers"], body["peak_viewers"], body["total_views"]) == (0, 7, 9)
    assert body["players"] == []


async def test_players_of_an_unknown_stream(client: TestClient, admin: dict, error: Any) -> None:
    response = await client.get("/v1/livestreams/ls_nope/players", headers=admin)
    await error(response, 404, "livestream_not_found", "id")


async def test_openapi_is_served_to_any_key(client: TestClient, reader: dict) -> None:
    response = await client.get("/v1/openapi.json", headers=reader)
    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.1")


async def test_openapi_is_public(client: TestClient, error: Any) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    # the rest still needs a key, and a wrong key is not let through on the public path
    await error(await client.get("/v1/livestreams"), 401, "unauthorized", None)
    wrong = await client.get("/v1/openapi.json", headers={"X-API-Key": "lk_wrong"})
    await error(wrong, 401, "unauthorized", None)
    await error(await client.post("/v1/openapi.json"), 401, "unauthorized", None)


def _openapi_path(route_path: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route_path)


async def test_openapi_covers_every_route(store: SqliteStore, control: Any) -> None:
    """Every route the API serves is described (assets come from API.md even before
    their routes exist), and nothing is described that API.md does not have."""
    api = build_api(store=store, control=control, urls=URLS)
    served = set()
    for route in api.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        served.add((route.method.lower(), _openapi_path(path)))
    described = {(method, path) for path, item in spec()["paths"].items() for method in item}
    assert served <= described, served - described
    for method, path in [("get", "/assets"), ("get", "/assets/{id}"), ("delete", "/assets/{id}")]:
        assert (method, path) in described
