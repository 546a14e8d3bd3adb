"""Recordings on S3 end to end: `live serve --storage s3://...` against moto's S3
server, the ffmpeg CLI publishing over RTMP, and the VOD asset fetched through the
node (proxy, with ranges) and from the bucket (presigned redirects)."""

from __future__ import annotations

import urllib.error
import urllib.request

import m3u8
import pytest
from harness import LiveProcess, count_frames, ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e

FPS = 30
SECONDS = 6


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get_without_following(url: str) -> tuple[int, dict[str, str]]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_a_broadcast_recorded_to_s3_plays_by_proxy_and_by_redirect(processes, tmp_path, s3_bucket):
    data_dir = tmp_path / "data"
    live = LiveProcess(processes, data_dir, "--storage", s3_bucket.url, env=s3_bucket.env)
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=SECONDS)
    live.wait_playable(stream["playback_id"])
    assert publisher.wait(30) == 0

    def ready():
        status, body = live.api("GET", f"/v1/assets?livestream_id={stream['id']}")
        assets = body["data"]
        assert status == 200 and not [a for a in assets if a["status"] == "failed"], assets
        return len(assets) == 1 and assets[0]["status"] == "ready" and assets[0]

    asset = wait_for(ready, 30, interval=0.25, message="a ready asset")

    # the objects are in the bucket, under the prefix; nothing on the node's disk
    prefix = f"{s3_bucket.prefix}/assets/{asset['id']}/"
    keys = s3_bucket.object_keys()
    assert keys and all(key.startswith(prefix) for key in keys), keys
    names = {key[len(prefix) :] for key in keys}
    assert {"index.m3u8", "download.mp4", "poster.jpg", "sprite.jpg", "sprite.vtt",
            "init_1.mp4", "init_1.json", "seg_00001.m4s", "seg_00001.json"} <= names  # fmt: skip
    segments = sorted(name for name in names if name.endswith(".m4s"))
    assert {name.replace(".m4s", ".json") for name in segments} <= names
    assert not (data_dir / "recordings").exists()

    # proxy: the MP4 through the node, whole and by range
    status, mp4, headers = live.get(asset["mp4_url"], timeout=30)
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    (tmp_path / "proxy.mp4").write_bytes(mp4)
    assert count_frames(tmp_path / "proxy.mp4") == SECONDS * FPS
    request = urllib.request.Request(asset["mp4_url"], headers={"Range": "bytes=1000-1999"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206 and response.read() == mp4[1000:2000]
        assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(mp4)}"
    assert asset["size_bytes"] >= len(mp4)
    assert count_frames(asset["hls_url"]) == SECONDS * FPS  # the VOD playlist plays
    live.stop()

    # redirect: the same asset from a node that hands out presigned URLs
    env = {**s3_bucket.env, "LIVE_VOD_DELIVERY": "redirect", "LIVE_VOD_URL_EXPIRY_S": "900"}
    live = LiveProcess(processes, data_dir, "--storage", s3_bucket.url, env=env)
    mp4_url = f"{live.http}/vod/{asset['id']}/download.mp4"
    status, headers = get_without_following(mp4_url)
    assert status == 302 and headers["Location"].startswith(s3_bucket.endpoint)
    assert "X-Amz-Expires=900" in headers["Location"]
    status, redirected, _ = live.get(mp4_url, timeout=30)  # urllib follows the 302
    assert status == 200 and redirected == mp4
    (tmp_path / "redirect.mp4").write_bytes(redirected)
    assert count_frames(tmp_path / "redirect.mp4") == SECONDS * FPS
    hls_url = f"{live.http}/vod/{asset['id']}/index.m3u8"
    playlist = m3u8.loads(live.get(hls_url)[1].decode())
    assert playlist.is_endlist and playlist.segments
    assert all(s.uri.startswith(s3_bucket.endpoint) for s in playlist.segments)
    assert count_frames(hls_url) == SECONDS * FPS
    live.stop()
