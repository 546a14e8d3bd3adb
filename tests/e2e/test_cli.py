"""`live serve` as a user runs it: first-start key, printed ports, health, SIGTERM."""

from __future__ import annotations

import re
import signal

import pytest
from harness import LiveProcess, ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e


def test_first_start_prints_an_admin_key_and_sigterm_ends_sessions_cleanly(processes, tmp_path):
    data = tmp_path / "data"
    first = LiveProcess(processes, data, env={"LIVE_API_KEY": ""})
    text = "".join(first.output)
    match = re.search(r"admin API key \(shown once, keep it\): (lk_\S+)", text)
    assert match, text
    key = match.group(1)
    assert all(port > 0 for port in first.ports.values())
    assert first.get("/healthz")[0] == 200
    assert first.api("GET", "/v1/livestreams", key=key)[0] == 200
    assert first.api("GET", "/v1/livestreams", key="lk_wrong")[0] == 401
    assert first.get("/v1/openapi.json")[0] == 200  # public, no key
    (listening,) = wait_for(
        lambda: [line for line in first.output if "listening:" in line], 10, message="log"
    )
    assert "rtmps" not in listening and "None" not in listening, listening  # RTMPS is off

    status, stream = first.api(
        "POST", "/v1/livestreams", {"name": "shutdown", "reconnect_window_s": 0}, key=key
    )
    assert status == 201
    publisher = ffmpeg_publish(processes, first.rtmp_url(stream["stream_key"]), seconds=30)
    media_url = first.wait_playable(stream["playback_id"])
    assert first.stop(signal.SIGTERM, timeout=20) == 0
    assert "#EXT-X-ENDLIST" not in media_url  # (the URL itself; the server is gone now)
    publisher.wait(15)  # the server closed its connection

    second = LiveProcess(processes, data, env={"LIVE_API_KEY": ""})
    assert "admin API key" not in "".join(second.output)  # only on a first start
    history = second.api("GET", f"/v1/livestreams/{stream['id']}/history", key=key)[1]
    (session,) = history["data"]
    assert session["end_reason"] == "server_shutdown"
    assert session["ended_at"] is not None
    livestream = second.api("GET", f"/v1/livestreams/{stream['id']}", key=key)[1]
    assert livestream["status"] == "idle"
    second.stop()


def test_sigkill_leaves_sessions_that_the_next_start_closes(processes, tmp_path):
    data = tmp_path / "data"
    first = LiveProcess(processes, data)
    stream = first.create_livestream(reconnect_window_s=0)
    ffmpeg_publish(processes, first.rtmp_url(stream["stream_key"]), seconds=30)
    first.wait_playable(stream["playback_id"])
    first.stop(signal.SIGKILL)
    second = LiveProcess(processes, data)
    livestream = second.api("GET", f"/v1/livestreams/{stream['id']}")[1]
    assert livestream["status"] == "idle" and livestream["current_session"] is None
    (session,) = second.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"]
    assert session["end_reason"] == "error"
    # and the key publishes again on the new process
    ffmpeg_publish(processes, second.rtmp_url(stream["stream_key"]), seconds=6)
    wait_for(
        lambda: second.api("GET", f"/v1/livestreams/{stream['id']}")[1]["status"] == "live",
        15,
        message="live on the restarted server",
    )
    second.stop()
