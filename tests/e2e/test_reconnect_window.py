"""reconnect_window_s: a publisher that drops and comes back continues its session."""

from __future__ import annotations

import time

import m3u8
import pytest
from harness import ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e


def test_reconnect_inside_the_window_continues_one_session(live, processes):
    stream = live.create_livestream(reconnect_window_s=4)
    path = f"/v1/livestreams/{stream['id']}"
    first = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=30)
    media_url = live.wait_playable(stream["playback_id"])
    time.sleep(2)
    first.kill()  # the connection drops without an unpublish
    first.wait(5)

    def reconnecting():
        body = live.api("GET", path)[1]
        return body["current_session"] and body["current_session"]["reconnecting"] and body

    body = wait_for(reconnecting, 5, message="reconnecting")
    assert body["status"] == "live"
    assert "#EXT-X-ENDLIST" not in live.get(media_url)[1].decode()

    second = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=6)
    wait_for(
        lambda: live.api("GET", path)[1]["current_session"]["reconnecting"] is False,
        10,
        message="publishing again",
    )
    history = live.api("GET", f"{path}/history")[1]
    assert history["total"] == 1  # one session across the drop

    def discontinuity():
        playlist = m3u8.loads(live.get(media_url)[1].decode())
        return any(segment.discontinuity for segment in playlist.segments)

    wait_for(discontinuity, 10, message="a discontinuity where the publisher came back")
    assert second.wait(30) == 0
    # the window runs out after the second publisher leaves: the session ends then
    ended = wait_for(
        lambda: "#EXT-X-ENDLIST" in live.get(media_url)[1].decode(),
        10,
        message="ENDLIST after the window",
    )
    assert ended
    (session,) = live.api("GET", f"{path}/history")[1]["data"]
    assert session["end_reason"] == "publisher_disconnected"
    assert live.api("GET", path)[1]["status"] == "idle"


def test_a_return_after_the_window_is_a_new_session(live, processes):
    stream = live.create_livestream(reconnect_window_s=1)
    path = f"/v1/livestreams/{stream['id']}"
    first = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=30)
    live.wait_playable(stream["playback_id"])
    first.kill()
    first.wait(5)
    wait_for(lambda: live.api("GET", path)[1]["status"] == "idle", 6, message="idle")
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=5)
    wait_for(
        lambda: live.api("GET", f"{path}/history")[1]["total"] == 2, 10, message="a second session"
    )


def test_kick_ends_the_session_even_with_a_window(live, processes):
    stream = live.create_livestream(reconnect_window_s=30)
    path = f"/v1/livestreams/{stream['id']}"
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=30)
    live.wait_playable(stream["playback_id"])
    started = time.monotonic()
    status, _ = live.api("POST", f"{path}/disconnect")
    assert status == 200
    publisher.wait(5)
    assert time.monotonic() - started < 2  # the connection is closed at once
    body = live.api("GET", path)[1]
    assert body["status"] == "idle"
    (session,) = live.api("GET", f"{path}/history")[1]["data"]
    assert session["end_reason"] == "kicked"
