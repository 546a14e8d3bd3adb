"""/v1/webhooks: endpoints, the delivery log and resend; ban/unban events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import URLS

from live.api import build_api, request_id_middleware
from live.events.outbox import WebhookOutbox
from live.store import SqliteStore


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
async def client(store: SqliteStore, control: Any, wakes: Wakes) -> AsyncIterator[TestClient]:
    outbox = WebhookOutbox(store, URLS, control=control, on_enqueued=wakes)
    root = web.Application(middlewares=[request_id_middleware])
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS, events=outbox))
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


async def _create(client: TestClient, admin: dict, **body: Any) -> dict:
    body = {"url": "https://example.com/hook", **body}
    response = await client.post("/v1/webhooks", json=body, headers=admin)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_create_shows_the_secret_once(client: TestClient, admin: dict) -> None:
    hook = await _create(client, admin, events=["livestream.live", "livestream.idle"])
    assert hook["id"].startswith("wh_") and hook["secret"].startswith("whsec_")
    assert hook["events"] == ["livestream.live", "livestream.idle"]
    got = await (await client.get(f"/v1/webhooks/{hook['id']}", headers=admin)).json()
    assert "secret" not in got and got["url"] == "https://example.com/hook"
    listing = await (await client.get("/v1/webhooks", headers=admin)).json()
    assert listing["total"] == 1 and "secret" not in listing["data"][0]


async def test_events_default_to_all(client: TestClient, admin: dict) -> None:
    hook = await _create(client, admin)
    assert "livestream.banned" in hook["events"] and "asset.ready" in hook["events"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": 5}, "url"),
        ({"url": "https://e.com", "events": []}, "events"),
        ({"url": "https://e.com", "events": ["livestream.exploded"]}, "events"),
        ({"url": "https://e.com", "events": "livestream.live"}, "events"),
        ({"url": "https://e.com", "colour": "red"}, "colour"),
    ],
)
async def test_create_validation(
    client: TestClient, admin: dict, error: Any, body: dict, param: str
) -> None:
    response = await client.post("/v1/webhooks", json=body, headers=admin)
    code = "parameter_missing" if not body else "invalid_parameter_value"
    await error(response, 400, code, param)


async def test_unknown_webhook_and_delivery(client: TestClient, admin: dict, error: Any) -> None:
    await error(await client.get("/v1/webhooks/wh_x", headers=admin), 404, "webhook_not_found")
    await error(await client.delete("/v1/webhooks/wh_x", headers=admin), 404, "webhook_not_found")
    response = await client.post("/v1/webhooks/deliveries/dlv_x/resend", headers=admin)
    await error(response, 404, "delivery_not_found")


async def test_read_key_reads_but_cannot_create(
    client: TestClient, admin: dict, reader: dict, error: Any
) -> None:
    await _create(client, admin)
    assert (await client.get("/v1/webhooks", headers=reader)).status == 200
    response = await client.post("/v1/webhooks", json={"url": "https://e.com"}, headers=reader)
    await error(response, 403, "forbidden")


async def test_a_ban_that_runs_out_is_lifted_and_announced_once(
    client: TestClient, admin: dict, store: SqliteStore, wakes: Wakes
) -> None:
    from datetime import timedelta

    from live.events.ban_expiry import BanExpiry
    from live.store.times import utcnow

    await _create(client, admin, events=["livestream.unbanned"])
    outbox = WebhookOutbox(store, URLS, on_enqueued=wakes)
    lapsed = await store.create_livestream(name="lapsed")
    running = await store.create_livestream(name="running")
    forever = await store.create_livestream(name="forever")
    await store.ban(lapsed.id, "spam", utcnow() - timedelta(seconds=1))
    await store.ban(running.id, "spam", utcnow() + timedelta(hours=1))
    await store.ban(forever.id, "spam")
    expiry = BanExpiry(store, outbox)
    assert await expiry.sweep() == 1
    assert await expiry.sweep() == 0  # announced once, not on every sweep
    shown = await (await client.get(f"/v1/livestreams/{lapsed.id}", headers=admin)).json()
    assert shown["status"] == "idle" and shown["ban"] is None
    for still in (running, forever):
        shown = await (await client.get(f"/v1/livestreams/{still.id}", headers=admin)).json()
        assert shown["status"] == "banned"
    log = await (await client.get("/v1/webhooks/deliveries", headers=admin)).json()
    assert [d["event"] for d in log["data"]] == ["livestream.unbanned"]
    assert log["data"][0]["payload"]["data"]["id"] == lapsed.id


async def test_ban_and_unban_are_announced_and_logged(
    client: TestClient, admin: dict, store: SqliteStore, wakes: Wakes
) -> None:
    hook = await _create(client, admin, events=["livestream.banned", "livestream.unbanned"])
    ls = await store.create_livestream(name="show")
    ban = await client.patch(f"/v1/livestreams/{ls.id}/ban", json={"reason": "spam"}, headers=admin)
    assert ban.status == 200
    assert (await client.patch(f"/v1/livestreams/{ls.id}/unban", headers=admin)).status == 200
    assert wakes.count == 2
    log = await (await client.get("/v1/webhooks/deliveries", headers=admin)).json()
    assert log["total"] == 2
    unbanned, banned = log["data"]  # newest first
    assert (banned["event"], unbanned["event"]) == ("livestream.banned", "livestream.unbanned")
    assert banned["webhook_id"] == hook["id"] and banned["state"] == "pending"
    assert banned["payload"]["data"]["status"] == "banned"
    assert banned["payload"]["data"]["ban"]["reason"] == "spam"
    assert banned["payload"]["data"]["stream_key"] is None
    assert ls.stream_key not in json.dumps(log)
    assert banned["payload"]["id"] == banned["event_id"]
    filtered = await client.get(
        "/v1/webhooks/deliveries", params={"state": "delivered"}, headers=admin
    )
    assert (await filtered.json())["total"] == 0
    one = await client.get(f"/v1/webhooks/deliveries/{banned['id']}", headers=admin)
    assert (await one.json())["event_id"] == banned["event_id"]


async def test_resend_makes_a_delivery_due_again(
    client: TestClient, admin: dict, store: SqliteStore, wakes: Wakes
) -> None:
    await _create(client, admin)
    ls = await store.create_livestream(name="show")
    await client.patch(f"/v1/livestreams/{ls.id}/ban", headers=admin)
    (delivery,), _ = await store.list_deliveries()
    await store.record_attempt(
        delivery.id,
        state="failed",
        next_attempt_at=delivery.next_attempt_at,
        last_status=500,
        last_error="HTTP 500",
    )
    before = wakes.count
    response = await client.post(f"/v1/webhooks/deliveries/{delivery.id}/resend", headers=admin)
    assert response.status == 202
    body = await response.json()
    assert body["state"] == "pending" and body["attempts"] == 1
    assert body["last_status_code"] == 500
    assert wakes.count == before + 1


async def test_deleting_an_endpoint_drops_its_deliveries(
    client: TestClient, admin: dict, store: SqliteStore
) -> None:
    hook = await _create(client, admin)
    ls = await store.create_livestream(name="show")
    await client.patch(f"/v1/livestreams/{ls.id}/ban", headers=admin)
    assert (await store.list_deliveries())[1] == 1
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=admin)).status == 204
    assert (await store.list_deliveries())[1] == 0


async def test_deliveries_filter_validation(client: TestClient, admin: dict, error: Any) -> None:
    response = await client.get("/v1/webhooks/deliveries?state=lost", headers=admin)
    await error(response, 400, "invalid_parameter_value", "state")
    response = await client.get("/v1/webhooks/deliveries?page_size=101", headers=admin)
    await error(response, 400, "page_size_more_than_max", "page_size")
