"""Webhooks against a receiver the test runs: every event of a publish, ban, unban,
publish cycle arrives signed and once; with the receiver down for 30 s and the server
restarted meanwhile, nothing is lost."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from harness import LiveProcess, ffmpeg_publish, wait_for
from receiver import Receiver

from live.events.signing import verify

pytestmark = pytest.mark.e2e

FAST_RETRIES = {
    "LIVE_WEBHOOK_BACKOFF_BASE_S": "1",
    "LIVE_WEBHOOK_BACKOFF_MAX_S": "3",
    "LIVE_WEBHOOK_TIMEOUT_S": "3",
    "LIVE_ENDED_PLAYLIST_LINGER_S": "5",
}
# The livestream events (recordings add asset.* events of their own).
EVENTS = [
    "livestream.connected", "livestream.live", "livestream.disconnected", "livestream.idle",
    "livestream.banned", "livestream.unbanned",
]  # fmt: skip


@pytest.fixture
def receiver():
    instance = Receiver()
    yield instance
    instance.close()


def _cycle(live, processes) -> tuple[dict, list[str]]:
    """publish, ban, unban: the events it must cause, in order."""
    stream = live.create_livestream(reconnect_window_s=5)
    path = f"/v1/livestreams/{stream['id']}"
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=60)
    live.wait_playable(stream["playback_id"])
    wait_for(lambda: live.api("GET", path)[1]["status"] == "live", 10, message="live")
    assert live.api("PATCH", f"{path}/ban")[0] == 200
    assert live.api("PATCH", f"{path}/unban")[0] == 200
    expected = [
        "livestream.connected", "livestream.live", "livestream.banned",
        "livestream.disconnected", "livestream.idle", "livestream.unbanned",
    ]  # fmt: skip
    return stream, expected


def test_every_event_arrives_signed_and_once(live_factory, processes, receiver):
    live = live_factory()
    status, hook = live.api("POST", "/v1/webhooks", {"url": receiver.url, "events": EVENTS})
    assert status == 201
    receiver.secret = hook["secret"]
    stream, expected = _cycle(live, processes)
    path = f"/v1/livestreams/{stream['id']}"
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=60)
    wait_for(lambda: live.api("GET", path)[1]["status"] == "live", 10, message="live again")

    def live_events() -> int:
        return sum(p["event"] == "livestream.live" for p in receiver.events().values())

    wait_for(lambda: live_events() == 2, 20, message="the second livestream.live")
    assert live.api("POST", f"{path}/disconnect")[0] == 200
    expected += ["livestream.connected", "livestream.live", "livestream.disconnected",
                 "livestream.idle"]  # fmt: skip
    wait_for(lambda: len(receiver.requests) >= len(expected), 20, message="all events")
    time.sleep(1.5)  # nothing more, nothing twice
    received = [payload for payload, _, _ in receiver.requests]
    assert Counter(p["event"] for p in received) == Counter(expected)
    assert len({p["id"] for p in received}) == len(received)  # once each
    for payload, raw, signature in receiver.requests:
        assert verify(hook["secret"], signature, raw, now=time.time()), payload["event"]
        assert stream["stream_key"] not in raw.decode()
        assert payload["data"]["id"] == stream["id"]
    idle = [p for p in received if p["event"] == "livestream.idle"]
    assert [p["data"]["session"]["end_reason"] for p in idle] == ["banned", "kicked"]
    log = live.api("GET", "/v1/webhooks/deliveries?page_size=100")[1]
    assert log["total"] == len(expected)
    assert {d["state"] for d in log["data"]} == {"delivered"}


def test_nothing_is_lost_while_the_receiver_is_down_and_the_server_restarts(
    live_factory, processes, receiver
):
    live = live_factory()
    status, hook = live.api("POST", "/v1/webhooks", {"url": receiver.url, "events": EVENTS})
    assert status == 201
    receiver.down()
    down_at = time.monotonic()
    _stream, expected = _cycle(live, processes)
    wait_for(
        lambda: (
            live.api("GET", "/v1/webhooks/deliveries?page_size=100")[1]["total"] == len(expected)
        ),
        10,
        message="the events in the outbox",
    )
    failing = live.api("GET", "/v1/webhooks/deliveries?page_size=100")[1]["data"]
    assert all(d["state"] == "pending" for d in failing)
    assert live.stop() == 0
    restarted = live_factory(data_dir=live.data_dir)
    time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
    receiver.up()
    print(f"receiver was down {time.monotonic() - down_at:.1f} s")
    wait_for(lambda: len(receiver.events()) >= len(expected), 20, interval=0.2,
             message="every event after the receiver came back")  # fmt: skip
    events = receiver.events()
    assert sorted(p["event"] for p in events.values()) == sorted(expected)
    assert {p["id"] for p in events.values()} == {d["event_id"] for d in failing}
    for payload, raw, signature in receiver.requests:
        assert verify(hook["secret"], signature, raw, now=time.time()), payload["event"]
    log = restarted.api("GET", "/v1/webhooks/deliveries?page_size=100")[1]["data"]
    assert {d["state"] for d in log} == {"delivered"}
    assert all(d["attempts"] >= 2 for d in log)
    status, metrics, _ = restarted.get("/metrics")
    assert b'live_webhook_deliveries_total{outcome="delivered"}' in metrics


@pytest.fixture
def live_factory(processes, tmp_path):
    servers: list[LiveProcess] = []

    def start(data_dir=None) -> LiveProcess:
        server = LiveProcess(processes, data_dir or tmp_path / "data", env=FAST_RETRIES)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
