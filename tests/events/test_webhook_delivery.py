"""Outbox and dispatcher against a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from waiting import eventually

from live.events.dispatcher import DispatchSettings, RetryPolicy, WebhookDispatcher
from live.events.outbox import WebhookOutbox, scrub
from live.events.signing import verify
from live.store import SqliteStore
from live.store.models import Session
from live.urls import PublicUrls

URLS = PublicUrls("http://live.test", "rtmp://live.test/live", "srt://live.test:9000")


class Receiver:
    """Answers with `status` (after `delay_s`) and records what arrived."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.received: list[tuple[dict, bytes, dict]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(self.delay_s)
        self.received.append((json.loads(body), body, dict(request.headers)))
        self.arrived.set()
        return web.Response(status=self.status)


async def _serve(receiver: Receiver) -> TestServer:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = await SqliteStore.open(tmp_path)
    yield instance
    await instance.close()


def _dispatcher(store: SqliteStore, **policy: float) -> WebhookDispatcher:
    return WebhookDispatcher(
        store,
        policy=RetryPolicy(**{"base_s": 0.2, "max_s": 0.4, "jitter": 0.0, **policy}),
        # No polling within a test: events must wake the loop and retries set its timer.
        settings=DispatchSettings(timeout_s=1.0, poll_s=60.0),
    )


async def test_livestream_event_is_signed_and_carries_no_secret(store: SqliteStore) -> None:
    receiver = Receiver()
    server = await _serve(receiver)
    hook = await store.create_webhook(str(server.make_url("/hook")), ["livestream.live"], "whsec_a")
    await store.create_webhook(str(server.make_url("/hook")), ["asset.ready"], "whsec_b")
    dispatcher = _dispatcher(store)
    outbox = WebhookOutbox(store, URLS, on_enqueued=dispatcher.wake)
    ls = await store.create_livestream(name="show", srt_passphrase="0123456789ab")
    session = Session(livestream_id=ls.id, protocol="rtmp", remote_addr="192.0.2.1:5000")
    dispatcher.start()
    try:
        await outbox.emit("livestream.live", ls, session)
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        await asyncio.sleep(0.3)  # nothing else is coming: the other hook is for assets
    finally:
        await dispatcher.stop()
        await server.close()
    assert len(receiver.received) == 1
    payload, raw, headers = receiver.received[0]
    assert verify(hook.secret, headers["Live-Signature"], raw, now=time.time())
    assert payload["event"] == "livestream.live" and payload["id"].startswith("evt_")
    assert payload["data"]["id"] == ls.id and payload["data"]["status"] == "live"
    assert payload["data"]["session"]["id"] == session.id
    assert ls.stream_key not in raw.decode() and "0123456789ab" not in raw.decode()
    assert payload["data"]["stream_key"] is None
    (delivery,), _ = await store.list_deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)


async def test_failures_are_retried_with_backoff_then_delivered(store: SqliteStore) -> None:
    receiver = Receiver(status=500)
    server = await _serve(receiver)
    await store.create_webhook(str(server.make_url("/hook")), ["asset.ready"], "whsec_a")
    dispatcher = _dispatcher(store)
    outbox = WebhookOutbox(store, URLS, on_enqueued=dispatcher.wake)
    dispatcher.start()
    try:
        event_id = await outbox.emit_asset("asset.ready", {"id": "ast_1", "stream_key": "x"})

        async def two_attempts() -> bool:
            return len(receiver.received) >= 2

        await eventually(two_attempts)
        receiver.status = 204

        async def delivered() -> bool:
            (d,), _ = await store.list_deliveries()
            return d.state == "delivered"

        await eventually(delivered)
    finally:
        await dispatcher.stop()
        await server.close()
    ids = {payload["id"] for payload, _, _ in receiver.received}
    assert ids == {event_id}  # the same event id on every attempt
    assert receiver.received[0][0]["data"] == {"id": "ast_1", "stream_key": None}
    (delivery,), _ = await store.list_deliveries()
    assert delivery.attempts == len(receiver.received) >= 3
    assert dispatcher.outcomes["failed_attempt"] >= 2


async def test_gives_up_after_the_retry_period(store: SqliteStore) -> None:
    await store.create_webhook("http://127.0.0.1:9/nothing", ["asset.failed"], "whsec_a")
    dispatcher = _dispatcher(store, retry_for_s=0.5)
    outbox = WebhookOutbox(store, URLS, on_enqueued=dispatcher.wake)
    dispatcher.start()
    try:
        await outbox.emit_asset("asset.failed", {"id": "ast_1"})

        async def failed() -> bool:
            (d,), _ = await store.list_deliveries()
            return d.state == "failed"

        await eventually(failed)
    finally:
        await dispatcher.stop()
    (delivery,), _ = await store.list_deliveries()
    assert delivery.last_error and delivery.last_status is None
    assert dispatcher.outcomes["gave_up"] == 1


async def test_a_slow_endpoint_does_not_delay_another(store: SqliteStore) -> None:
    slow, fast = Receiver(delay_s=3.0), Receiver()
    slow_server, fast_server = await _serve(slow), await _serve(fast)
    await store.create_webhook(str(slow_server.make_url("/hook")), ["asset.ready"], "whsec_a")
    await store.create_webhook(str(fast_server.make_url("/hook")), ["asset.ready"], "whsec_b")
    dispatcher = _dispatcher(store)
    outbox = WebhookOutbox(store, URLS, on_enqueued=dispatcher.wake)
    dispatcher.start()
    try:
        started = time.monotonic()
        for n in range(10):
            await outbox.emit_asset("asset.ready", {"id": f"ast_{n}"})

        async def fast_has_all() -> bool:
            return len(fast.received) == 10

        await eventually(fast_has_all)
        assert time.monotonic() - started < 1.5
    finally:
        await dispatcher.stop()
        await slow_server.close()
        await fast_server.close()


class CountingStore(SqliteStore):
    """Counts the dispatcher's looks at the outbox."""

    looks = 0

    async def next_delivery_at(self):  # type: ignore[no-untyped-def]
        self.looks += 1
        return await super().next_delivery_at()


async def test_a_backlog_behind_a_full_endpoint_waits_without_spinning(tmp_path: Path) -> None:
    store = await CountingStore.open(tmp_path)
    receiver = Receiver(delay_s=0.2)
    server = await _serve(receiver)
    await store.create_webhook(str(server.make_url("/hook")), ["asset.ready"], "whsec_a")
    dispatcher = WebhookDispatcher(
        store, settings=DispatchSettings(timeout_s=5.0, per_endpoint=2, poll_s=60.0)
    )
    outbox = WebhookOutbox(store, URLS, on_enqueued=dispatcher.wake)
    dispatcher.start()
    try:
        for n in range(8):
            await outbox.emit_asset("asset.ready", {"id": f"ast_{n}"})

        async def all_arrived() -> bool:
            return len(receiver.received) == 8

        await eventually(all_arrived)
        # Eight deliveries, two at a time: each freed slot wakes the loop once (plus
        # the wakes of the eight events). A loop that kept looking while the endpoint
        # was full would have looked thousands of times in the ~0.8 s this takes.
        assert store.looks <= 30
        assert sorted(body["data"]["id"] for body, _, _ in receiver.received) == [
            f"ast_{n}" for n in range(8)
        ]
    finally:
        await dispatcher.stop()
        await server.close()
        await store.close()


class FlakyReceiver(Receiver):
    """Fails the first request with a 500, then answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.status = 500 if self.attempts == 1 else 200
        return await super().handle(request)


async def test_a_retry_is_not_held_up_by_another_endpoints_backlog(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path)
    slow, flaky = Receiver(delay_s=4.0), FlakyReceiver()
    slow_server, flaky_server = await _serve(slow), await _serve(flaky)
    await store.create_webhook(str(slow_server.make_url("/hook")), ["asset.ready"], "whsec_a")
    await store.create_webhook(str(flaky_server.make_url("/hook")), ["asset.failed"], "whsec_b")
    dispatcher = WebhookDispatcher(
        store,
        policy=RetryPolicy(base_s=0.2, max_s=0.4, jitter=0.0),
        settings=DispatchSettings(timeout_s=10.0, per_endpoint=1, poll_s=60.0),
    )
    outbox = WebhookOutbox(store, URLS, on_enqueued=dispatcher.wake)
    dispatcher.start()
    try:
        for n in range(3):  # one in flight for 4 s, two due behind it
            await outbox.emit_asset("asset.ready", {"id": f"ast_{n}"})
        await outbox.emit_asset("asset.failed", {"id": "ast_x"})

        async def retried() -> bool:
            return len(flaky.received) == 2

        await eventually(retried)
        # The retry went out while the slow endpoint's first delivery was still in
        # flight, not when its completion happened to wake the loop.
        assert slow.received == []
        assert flaky.attempts == 2
    finally:
        await dispatcher.stop()
        await slow_server.close()
        await flaky_server.close()
        await store.close()


async def test_claimed_deliveries_survive_a_crash(store: SqliteStore) -> None:
    """A delivery claimed by a process that died is sent once its lease runs out."""
    receiver = Receiver()
    server = await _serve(receiver)
    hook = await store.create_webhook(str(server.make_url("/hook")), ["asset.ready"], "whsec_a")
    outbox = WebhookOutbox(store, URLS)
    await outbox.emit_asset("asset.ready", {"id": "ast_1"})
    from datetime import timedelta

    from live.store.times import utcnow

    now = utcnow()
    claimed = await store.claim_due_deliveries(hook.id, now, now + timedelta(seconds=0.5), 10)
    assert len(claimed) == 1
    assert await store.claim_due_deliveries(hook.id, now, now, 10) == []  # leased
    dispatcher = _dispatcher(store)  # "after the restart"
    dispatcher.start()
    try:
        await asyncio.wait_for(receiver.arrived.wait(), 5)
    finally:
        await dispatcher.stop()
        await server.close()
    assert len(receiver.received) == 1


def test_scrub_nulls_secrets_at_any_depth() -> None:
    value = {"a": [{"stream_key": "k", "b": {"srt_passphrase": "p"}}], "secret": "s", "c": 1}
    assert scrub(value) == {
        "a": [{"stream_key": None, "b": {"srt_passphrase": None}}],
        "secret": None,
        "c": 1,
    }


async def test_a_repeated_disconnected_is_dropped(store: SqliteStore) -> None:
    await store.create_webhook("https://a.example/h", ["livestream.disconnected"], "whsec_a")
    outbox = WebhookOutbox(store, URLS)
    ls = await store.create_livestream(name="show")
    await outbox.emit("livestream.disconnected", ls, None)
    await outbox.emit("livestream.disconnected", ls, None)  # the kick and the drop racing
    assert (await store.list_deliveries())[1] == 1
    await outbox.emit("livestream.connected", ls, None)
    await outbox.emit("livestream.disconnected", ls, None)
    assert (await store.list_deliveries())[1] == 2
