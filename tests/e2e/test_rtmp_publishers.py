"""Publishers other than the ffmpeg CLI: HEVC over Enhanced RTMP, and a publisher
that goes silent on a live TCP connection and is taken over."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import m3u8
import pytest
from harness import ffmpeg_publish, ffprobe_streams, wait_for

pytestmark = pytest.mark.e2e
PUBLISHER = str(Path(__file__).with_name("pyav_publisher.py"))


def pyav_publish(processes, url, *args):
    return processes.popen(
        [sys.executable, PUBLISHER, url, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_hevc_over_enhanced_rtmp_plays_as_hvc1(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = pyav_publish(
        processes, live.rtmp_url(stream["stream_key"]), "--codec", "libx265", "--seconds", "10"
    )
    media_url = live.wait_playable(stream["playback_id"], timeout=30)
    multivariant = live.get(f"/live/{stream['playback_id']}/index.m3u8")[1].decode()
    assert 'CODECS="hvc1.' in multivariant
    streams = {s["codec_type"]: s for s in ffprobe_streams(media_url)}
    assert streams["video"]["codec_name"] == "hevc"
    assert streams["video"]["codec_tag_string"] == "hvc1"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    session = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
    assert session["video"]["codec"] == "hevc"
    assert publisher.wait(30) == 0, publisher.stderr.read()


def test_silent_publisher_is_taken_over_by_a_new_one(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    url = live.rtmp_url(stream["stream_key"])
    silent = pyav_publish(processes, url, "--seconds", "40", "--silent-after", "3")
    media_url = live.wait_playable(stream["playback_id"], timeout=30)
    time.sleep(3 + 2.5)  # 3 s of media, then more than the 2 s staleness rule
    assert silent.poll() is None  # its TCP connection is still open
    successor = ffmpeg_publish(processes, url, seconds=8)
    wait_for(
        lambda: live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["total"] == 2,
        10,
        message="a second session",
    )
    history = live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"]
    newest, oldest = history
    assert oldest["end_reason"] == "publisher_disconnected"
    assert newest["ended_at"] is None
    # only the new publisher holds the stream
    assert 'live_publishers{protocol="rtmp"} 1.0' in live.get("/metrics")[1].decode()

    def discontinuity():
        playlist = m3u8.loads(live.get(media_url)[1].decode())
        return any(segment.discontinuity for segment in playlist.segments)

    wait_for(discontinuity, 10, message="a discontinuity in the playlist")
    assert successor.wait(30) == 0
