"""WHIP from headless Chromium (fake camera and microphone): VP8 is transcoded to
H.264, H.264 passes through, Opus becomes AAC; the page's DELETE ends the session."""

from __future__ import annotations

import subprocess
import urllib.parse

import pytest
from browser import PageServer, open_chromium
from harness import ffprobe_streams, wait_for
from test_whip_support import start_live

pytestmark = pytest.mark.e2e


def _open_publisher(processes, url: str, profile) -> subprocess.Popen:
    fake_media = (
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        "--allow-loopback-in-peer-connection",
    )
    return open_chromium(processes, url, profile, fake_media)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_chromium_publishes_over_whip(processes, tmp_path, codec):
    live = start_live(processes, tmp_path / "data")
    stream = live.create_livestream(reconnect_window_s=10)
    pages = PageServer()
    try:
        query = urllib.parse.urlencode(
            {
                "endpoint": f"{live.http}/whip",
                "key": stream["stream_key"],
                "codec": codec,
                "seconds": "15",
            }
        )
        _open_publisher(processes, pages.url(f"whip_publisher.html?{query}"), tmp_path / "p")
        connected = pages.wait_report(30)
        assert connected["stage"] == "connected", connected
        assert connected["status"] == 201 and connected["connected"], connected
        assert "a=recvonly" in connected["answer"]
        assert "127.0.0.1" in connected["answer"].split("a=candidate:", 1)[1].split("\n")[0]

        media_url = live.wait_playable(stream["playback_id"], timeout=20)
        streams = {s["codec_type"]: s for s in ffprobe_streams(media_url)}
        assert streams["video"]["codec_name"] == "h264"
        assert streams["video"]["width"] > 0
        assert streams["audio"]["codec_name"] == "aac"
        session = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
        assert session["protocol"] == "whip"
        assert "Chrome" in session["encoder"]
        assert session["video"]["codec"] == "h264"

        done = wait_for(
            lambda: pages.reports[-1] if pages.reports[-1]["stage"] != "connected" else None,
            30,
            message="the page to finish",
        )
        assert done["stage"] == "done", done
        assert done["deleteStatus"] == 200
        assert done["sentCodec"].upper() == f"VIDEO/{codec}"
        assert done["framesSent"] > 60
        history = wait_for(
            lambda: (
                (h := live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"])
                and h[0]["ended_at"]
                and h
            ),
            5,
            message="the DELETE to end the session",
        )
        assert history[0]["end_reason"] == "publisher_disconnected"
        assert history[0]["video"]["codec"] == "h264"
    finally:
        pages.close()
