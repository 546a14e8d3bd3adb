"""Viewer counting from the HLS requests of real players: three ffmpeg readers and
hls.js in headless Chromium, all from one address."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.parse

import pytest
from browser import PageServer, open_chromium
from harness import LiveProcess, ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def page_server():
    server = PageServer()
    yield server
    server.close()


def _reader(processes, url: str) -> subprocess.Popen:
    return processes.popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats", "-re", "-i", url,
         "-t", "60", "-f", "null", "-"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_players_are_counted_and_leave(live, processes, page_server, tmp_path):
    stream = live.create_livestream(reconnect_window_s=0)
    path = f"/v1/livestreams/{stream['id']}"
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=90)
    # Multivariant fetches alone are no views; a media playlist fetch would be one, so
    # the test reads the target duration only at the end.
    media_url = live.wait_playable(stream["playback_id"])
    hls_url = f"{live.http}/live/{stream['playback_id']}/index.m3u8"
    readers = [_reader(processes, hls_url) for _ in range(3)]
    query = urllib.parse.urlencode(
        {"src": hls_url, "report": page_server.url("report"), "seconds": 60}
    )
    browser = open_chromium(processes, page_server.url(f"player.html?{query}"), tmp_path / "p")

    def players():
        return live.api("GET", f"{path}/players")[1]

    counted = wait_for(lambda: players()["current_viewers"] == 4 and players(), 30,
                       interval=0.3, message="four viewers")  # fmt: skip
    assert counted["unique_viewers"] == 2  # ffmpeg x 3 share address and user agent
    agents = [p["user_agent"] for p in counted["players"]]
    assert sum("Lavf" in a for a in agents) == 3 and sum("Chrome" in a for a in agents) == 1
    assert all(p["rendition"] and p["bytes_out"] > 0 for p in counted["players"])
    assert counted["bytes_out"] > 0 and counted["total_views"] == 4
    time.sleep(2)
    assert players()["current_viewers"] == 4  # steady while they play

    for process in [*readers, browser]:
        process.terminate()
    stopped = time.monotonic()
    for process in [*readers, browser]:
        process.wait(10)
    wait_for(lambda: players()["current_viewers"] == 0, 15, interval=0.2, message="viewers gone")
    gone_after = time.monotonic() - stopped

    after = players()
    assert after["peak_viewers"] == 4 and after["total_views"] == 4
    assert after["watch_time_s"] > 4 * 2
    assert live.api("POST", f"{path}/disconnect")[0] == 200
    (session,) = live.api("GET", f"{path}/history")[1]["data"]
    assert (session["peak_viewers"], session["total_views"]) == (4, 4)
    _status, metrics, _ = live.get("/metrics")
    assert b"live_viewers 0.0" in metrics
    target_duration = next(
        int(line.split(":")[1])
        for line in live.get(media_url)[1].decode().splitlines()
        if line.startswith("#EXT-X-TARGETDURATION")
    )
    print(f"TD {target_duration} s; viewers gone {gone_after:.1f} s after the players stopped")
    # three target durations, plus the once-a-second sweep
    assert gone_after <= 3 * target_duration + 1.5


def test_viewer_stats_off_gives_every_viewer_the_same_uris(processes, tmp_path):
    """`viewer_stats = false`: no player ids in any URI (a CDN can cache one copy for
    everyone), nothing counted, while the metrics still see every request."""
    live = LiveProcess(processes, tmp_path / "data", env={"LIVE_VIEWER_STATS": "false"})
    try:
        stream = live.create_livestream(reconnect_window_s=0)
        ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=30)
        media_url = live.wait_playable(stream["playback_id"])
        assert "/pl_" not in media_url
        bodies = [live.get(media_url)[1].decode() for _ in range(2)]
        assert bodies[0] and all("pl_" not in body for body in bodies)
        part = re.findall(r'URI="(part-\d+\.m4s[^"]*)"', bodies[-1])[-2]
        assert live.get(media_url.rsplit("/", 1)[0] + "/" + part)[0] == 200
        players = live.api("GET", f"/v1/livestreams/{stream['id']}/players")[1]
        assert players["current_viewers"] == 0 and players["players"] == []
        metrics = live.get("/metrics")[1].decode()
        assert re.search(r'live_hls_requests_total\{kind="part"\} [1-9]', metrics), metrics
    finally:
        live.stop()
