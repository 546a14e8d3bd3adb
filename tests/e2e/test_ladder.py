"""transcode: ladder — lower renditions beside the source, aligned segment for segment."""

from __future__ import annotations

import m3u8
import pytest
from harness import ffmpeg_publish, ffprobe_streams, wait_for

pytestmark = pytest.mark.e2e


def test_720p_source_gets_480p_and_360p_renditions_that_line_up(live, processes):
    stream = live.create_livestream(reconnect_window_s=0, transcode="ladder")
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=25, size="1280x720")
    live.wait_playable(stream["playback_id"], timeout=30)
    base = f"/live/{stream['playback_id']}"

    def three_renditions():
        text = live.get(f"{base}/index.m3u8")[1].decode()
        playlist = m3u8.loads(text)
        return len(playlist.playlists) == 3 and playlist

    multivariant = wait_for(three_renditions, 20, message="three renditions")
    by_height = {p.stream_info.resolution[1]: p for p in multivariant.playlists}
    assert sorted(by_height) == [360, 480, 720]
    for variant in multivariant.playlists:
        info = variant.stream_info
        assert info.bandwidth and info.codecs and info.frame_rate
        assert info.average_bandwidth
    assert by_height[480].stream_info.resolution == (854, 480)
    assert by_height[720].stream_info.bandwidth > by_height[360].stream_info.bandwidth

    for height, variant in by_height.items():
        url = f"{live.http}{base}/{variant.uri}"
        wait_for(
            lambda url=url: (
                len([s for s in m3u8.loads(live.get(url)[1].decode()).segments if s.uri]) >= 3
            ),
            15,
            message="three closed segments",
        )
        streams = ffprobe_streams(url)
        video = next((s for s in streams if s["codec_type"] == "video"), None)
        assert video is not None, (height, streams, live.get(url)[1].decode())
        assert (video["codec_name"], video["height"]) == ("h264", height)

    # segment boundaries line up: same media sequence numbers, durations within a frame
    playlists = {
        h: m3u8.loads(live.get(f"{base}/{v.uri}")[1].decode()) for h, v in by_height.items()
    }
    source = playlists[720]
    for height in (480, 360):
        rung = playlists[height]
        common = set(s.uri for s in source.segments if s.uri) & set(
            s.uri for s in rung.segments if s.uri
        )
        assert len(common) >= 3
        for segment in source.segments:
            twin = next((s for s in rung.segments if s.uri == segment.uri), None)
            if twin is not None and segment.uri:
                assert abs(twin.duration - segment.duration) <= 1 / 30 + 0.001
        # each media playlist reports the other renditions
        assert len(rung.rendition_reports) == 2
    current = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
    assert not any("dropped" in w for w in current["warnings"]), current["warnings"]
