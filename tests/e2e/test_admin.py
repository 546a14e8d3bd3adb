"""Ban, unban, ban with `until`, and key reset against the real ffmpeg CLI."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from harness import ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e


def _refused(live, reason: str) -> float:
    _status, body, _ = live.get("/metrics")
    match = re.search(rf'live_publish_refused_total{{reason="{reason}"}} (\S+)', body.decode())
    return float(match.group(1)) if match else 0.0


def _publish_is_refused(live, processes, key: str) -> None:
    """ffmpeg cannot publish: it exits with an error within seconds."""
    attempt = ffmpeg_publish(processes, live.rtmp_url(key), seconds=10)
    assert attempt.wait(10) != 0


def test_ban_disconnects_at_once_and_refuses_until_unbanned(live, processes):
    stream = live.create_livestream(reconnect_window_s=10)  # a ban ignores the window
    path = f"/v1/livestreams/{stream['id']}"
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=60)
    live.wait_playable(stream["playback_id"])

    started = time.monotonic()
    status, body = live.api("PATCH", f"{path}/ban", {"reason": "terms of service"})
    assert status == 200 and body["status"] == "banned"
    publisher.wait(5)
    closed_after = time.monotonic() - started
    print(f"ffmpeg connection closed {closed_after:.3f} s after the ban request")
    assert closed_after < 1.0

    (session,) = live.api("GET", f"{path}/history")[1]["data"]
    assert session["end_reason"] == "banned" and session["ended_at"]
    assert session["protocol"] == "rtmp" and session["bytes_in"] > 0

    before = _refused(live, "banned")
    _publish_is_refused(live, processes, stream["stream_key"])
    assert _refused(live, "banned") == before + 1
    assert live.api("GET", f"{path}/history")[1]["total"] == 1
    assert stream["stream_key"] not in "".join(live.output)  # keys never reach the logs

    status, body = live.api("PATCH", f"{path}/unban")
    assert status == 200 and body["status"] == "idle" and body["ban"] is None
    again = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=30)
    wait_for(lambda: live.api("GET", path)[1]["status"] == "live", 10, message="live again")
    assert again.poll() is None
    assert live.api("GET", f"{path}/history")[1]["total"] == 2


def test_a_ban_with_until_lifts_itself(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    path = f"/v1/livestreams/{stream['id']}"
    until = datetime.now(UTC) + timedelta(seconds=3)
    status, body = live.api("PATCH", f"{path}/ban", {"until": until.isoformat()})
    assert status == 200 and body["status"] == "banned" and body["ban"]["until"]
    _publish_is_refused(live, processes, stream["stream_key"])
    wait_for(lambda: datetime.now(UTC) > until, 5, message="the ban's end")
    assert live.api("GET", path)[1]["status"] == "idle"
    # The sweeper, woken by the ban, clears it at its end (not at its next rescan).
    wait_for(lambda: live.api("GET", path)[1]["ban"] is None, 1.5, message="the ban cleared")
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=20)
    wait_for(lambda: live.api("GET", path)[1]["status"] == "live", 10, message="live after until")


def test_reset_stream_key_disconnects_and_retires_the_old_key(live, processes):
    stream = live.create_livestream(reconnect_window_s=10)
    path = f"/v1/livestreams/{stream['id']}"
    old_key = stream["stream_key"]
    publisher = ffmpeg_publish(processes, live.rtmp_url(old_key), seconds=60)
    live.wait_playable(stream["playback_id"])
    started = time.monotonic()
    status, body = live.api("POST", f"{path}/reset-stream-key")
    assert status == 200
    new_key = body["stream_key"]
    assert new_key != old_key
    publisher.wait(5)
    assert time.monotonic() - started < 1.0
    (session,) = live.api("GET", f"{path}/history")[1]["data"]
    assert session["end_reason"] == "key_reset"

    before = _refused(live, "unknown_key")
    _publish_is_refused(live, processes, old_key)
    assert _refused(live, "unknown_key") == before + 1
    ffmpeg_publish(processes, live.rtmp_url(new_key), seconds=20)
    wait_for(lambda: live.api("GET", path)[1]["status"] == "live", 10, message="live on new key")
