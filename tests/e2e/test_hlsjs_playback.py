"""hls.js in headless Chromium: the one client that plays LL-HLS as players do
(parts, blocking reload); ffprobe ignores both."""

from __future__ import annotations

import itertools

import pytest
from browser import PageServer, open_chromium
from harness import ffmpeg_publish

pytestmark = pytest.mark.e2e
WATCH_S = 16


@pytest.fixture
def page_server():
    server = PageServer()
    yield server
    server.close()


def test_hlsjs_plays_low_latency_without_stalls(live, processes, page_server, tmp_path):
    stream = live.create_livestream(reconnect_window_s=0)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=WATCH_S + 20)
    live.wait_playable(stream["playback_id"])
    src = f"{live.http}/live/{stream['playback_id']}/index.m3u8"
    open_chromium(processes, page_server.player_url(src, WATCH_S), tmp_path / "profile")
    report = page_server.wait_report(WATCH_S + 30)
    (tmp_path / "report.json").write_text(__import__("json").dumps(report))

    fatal = [e for e in report["errors"] if e["fatal"]]
    assert not fatal, report["errors"]
    assert report["playingAt"] is not None, report
    playing = [s for s in report["samples"] if s["t"] >= report["playingAt"]]
    # currentTime advances through 10 s of watching, never stalling
    watched = [s for s in playing if s["t"] <= report["playingAt"] + 10.5]
    assert watched[-1]["currentTime"] - watched[0]["currentTime"] >= 9.0, watched
    assert report["stalls"] == 0, report["errors"]
    for earlier, later in itertools.pairwise(watched):
        assert later["currentTime"] > earlier["currentTime"], (earlier, later)
    # latency hls.js reports, once it has settled (2 s after playback starts), stays < 2 s
    settled = [s for s in playing if s["t"] >= report["playingAt"] + 2 and s["latency"]]
    assert settled
    assert max(s["latency"] for s in settled) < 2.0, [s["latency"] for s in settled]
