"""Two `live serve` nodes sharing a real redis-server on loopback: a stream published
to one plays through the other, a ban on either cuts the publisher within a second,
a killed node's stream moves, webhooks arrive once, and Redis may restart."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from browser import PageServer, open_chromium
from harness import (
    LiveProcess,
    Processes,
    RedisProcess,
    count_frames,
    ffmpeg_publish,
    ffprobe_streams,
    wait_for,
)
from receiver import Receiver

pytestmark = pytest.mark.e2e

FAST = {
    "LIVE_ENDED_PLAYLIST_LINGER_S": "5",
    "LIVE_WEBHOOK_BACKOFF_BASE_S": "1",
    "LIVE_WEBHOOK_BACKOFF_MAX_S": "2",
}


@pytest.fixture
def cluster(processes, tmp_path, s3_bucket):
    """Start nodes that share one Redis (with AOF) and one S3 bucket (moto)."""
    redis = RedisProcess(processes, appendonly=True)
    nodes: list[LiveProcess] = []

    def node(name: str, **env: str) -> LiveProcess:
        server = LiveProcess(
            processes,
            tmp_path / name,
            "--redis",
            redis.url,
            "--storage",
            s3_bucket.url,
            env={**FAST, **s3_bucket.env, **env},
        )
        nodes.append(server)
        return server

    node.redis = redis  # type: ignore[attr-defined]
    node.bucket = s3_bucket  # type: ignore[attr-defined]
    yield node
    for server in nodes:
        server.stop()
        # Shown when the test fails: what each node logged.
        print(f"--- node {server.data_dir.name}:\n" + "".join(server.output[-80:]))


def _status(node: LiveProcess, livestream_id: str) -> str:
    return node.api("GET", f"/v1/livestreams/{livestream_id}")[1]["status"]


def _refused(node: LiveProcess, processes, key: str) -> bool:
    attempt = ffmpeg_publish(processes, node.rtmp_url(key), seconds=10)
    return attempt.wait(10) != 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _without_following(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def _plays_in_hlsjs(src: str, tmp_path, seconds: float = 6) -> None:
    """hls.js in headless Chromium plays `src` for `seconds` without a fatal error."""
    pages, browser = PageServer(), Processes()
    try:
        open_chromium(browser, pages.player_url(src, seconds), tmp_path / "profile")
        report = pages.wait_report(seconds + 30)
    finally:
        browser.end_all()
        pages.close()
    assert not [e for e in report["errors"] if e["fatal"]], report["errors"]
    assert report["playingAt"] is not None, report
    playing = [s for s in report["samples"] if s["t"] >= report["playingAt"]]
    assert playing[-1]["currentTime"] > playing[0]["currentTime"], playing


def test_a_stream_on_one_node_is_watched_banned_and_counted_on_the_other(
    cluster, processes, tmp_path
):
    a, b = cluster("a"), cluster("b")
    stream = b.create_livestream(reconnect_window_s=5, record=True)
    path = f"/v1/livestreams/{stream['id']}"
    publisher = ffmpeg_publish(processes, a.rtmp_url(stream["stream_key"]), seconds=60)

    status, raw, _ = b.get("/healthz")
    health = json.loads(raw)
    assert status == 200 and health["redis"] == "ok" and health["storage"] == "ok"
    assert (
        health["node"]["url"] == b.http
        and health["node"]["id"] != json.loads(a.get("/healthz")[1])["node"]["id"]
    )
    media_url = b.wait_playable(stream["playback_id"])  # proxied to a
    assert media_url.startswith(b.http)
    kinds = {s["codec_type"] for s in ffprobe_streams(media_url)}
    assert kinds == {"video", "audio"}
    _plays_in_hlsjs(f"{b.http}/live/{stream['playback_id']}/index.m3u8", tmp_path)

    c = cluster("c", LIVE_CLUSTER_PLAYBACK="redirect")
    status, headers = _without_following(f"{c.http}/live/{stream['playback_id']}/index.m3u8")
    assert status == 302
    assert headers["Location"] == f"{a.http}/live/{stream['playback_id']}/index.m3u8"
    wait_for(lambda: b.api("GET", path)[1]["current_session"], 10,
             message="b to show a's live session")  # fmt: skip
    live_on_b = b.api("GET", path)[1]["current_session"]
    assert live_on_b["protocol"] == "rtmp" and live_on_b["video"]["width"] == 640

    started = time.monotonic()
    status, body = b.api("PATCH", f"{path}/ban", {"reason": "abuse"})
    assert status == 200 and body["status"] == "banned"
    publisher.wait(5)
    cut_after = time.monotonic() - started
    print(f"a's publisher cut {cut_after * 1000:.0f} ms after the ban on b")
    assert cut_after < 1.0
    assert _refused(b, processes, stream["stream_key"])
    assert _refused(a, processes, stream["stream_key"])

    assert a.api("PATCH", f"{path}/unban")[0] == 200
    ffmpeg_publish(processes, b.rtmp_url(stream["stream_key"]), seconds=60)
    wait_for(lambda: _status(a, stream["id"]) == "live", 10, message="live again, on b")
    a.wait_playable(stream["playback_id"])  # now proxied from a to b

    assert b.api("POST", f"{path}/disconnect")[0] == 200
    wait_for(lambda: _status(a, stream["id"]) == "idle", 10, message="idle after kick")
    history_a = a.api("GET", f"{path}/history")[1]
    history_b = b.api("GET", f"{path}/history")[1]
    assert history_a == history_b
    assert [s["end_reason"] for s in history_a["data"]] == ["kicked", "banned"]
    assert all(s["bytes_in"] > 0 and s["video"] for s in history_a["data"]), history_a
    players_a = a.api("GET", f"{path}/players")[1]
    players_b = b.api("GET", f"{path}/players")[1]
    for figure in ("peak_viewers", "total_views"):
        assert players_a[figure] == players_b[figure]

    # b's recording: in the bucket, and the same MP4 from either node
    asset_id = history_a["data"][0]["asset_id"]
    asset = wait_for(
        lambda: (found := a.api("GET", f"/v1/assets/{asset_id}")[1])["status"] == "ready"
        and found,
        30, message="b's recording to be ready",
    )  # fmt: skip
    keys = cluster.bucket.object_keys()
    assert any(key.endswith(f"assets/{asset_id}/download.mp4") for key in keys), keys
    frames_a = count_frames(f"{a.http}/vod/{asset_id}/download.mp4")
    frames_b = count_frames(f"{b.http}/vod/{asset_id}/download.mp4")
    assert frames_a == frames_b
    assert abs(frames_a - asset["duration_s"] * 30) <= 2, (frames_a, asset["duration_s"])


def test_a_killed_nodes_stream_publishes_elsewhere_and_its_session_is_closed(cluster, processes):
    a, b = cluster("a"), cluster("b")
    stream = a.create_livestream(reconnect_window_s=0, record=True)
    path = f"/v1/livestreams/{stream['id']}"
    ffmpeg_publish(processes, a.rtmp_url(stream["stream_key"]), seconds=60)
    a.wait_playable(stream["playback_id"])
    time.sleep(6)  # some recording: a first VOD segment (4 s) stored whole
    a.stop(signal.SIGKILL)
    killed_at = time.monotonic()

    def republished() -> bool:
        attempt = ffmpeg_publish(processes, b.rtmp_url(stream["stream_key"]), seconds=60)
        try:
            attempt.wait(1.5)
            return False  # refused: the dead node's lease still counts
        except Exception:
            return True  # still sending

    wait_for(republished, 12, interval=0.2, message="the key to publish on b")
    print(f"republished on b {time.monotonic() - killed_at:.1f} s after the kill")
    assert time.monotonic() - killed_at < 10

    def old_session_closed():
        sessions = b.api("GET", f"{path}/history")[1]["data"]
        return len(sessions) == 2 and sessions[1]["ended_at"] and sessions[1]

    old = wait_for(old_session_closed, 10, message="the killed node's session to close")
    assert old["end_reason"] == "error"
    asset = wait_for(
        lambda: b.api("GET", f"/v1/assets/{old['asset_id']}")[1]["status"] == "ready"
        and b.api("GET", f"/v1/assets/{old['asset_id']}")[1],
        30, message="the killed node's recording to be finalised",
    )  # fmt: skip
    assert asset["duration_s"] >= 1.0
    assert _status(b, stream["id"]) == "live"


def test_webhooks_arrive_once_whatever_the_node(cluster, processes):
    receiver = Receiver()
    try:
        a, b = cluster("a"), cluster("b")
        events = ["livestream.connected", "livestream.live", "livestream.disconnected",
                  "livestream.idle", "livestream.banned", "livestream.unbanned"]  # fmt: skip
        status, _hook = b.api("POST", "/v1/webhooks", {"url": receiver.url, "events": events})
        assert status == 201
        stream = a.create_livestream(reconnect_window_s=5, record=False)
        path = f"/v1/livestreams/{stream['id']}"
        ffmpeg_publish(processes, a.rtmp_url(stream["stream_key"]), seconds=60)
        a.wait_playable(stream["playback_id"])
        wait_for(lambda: _status(b, stream["id"]) == "live", 10, message="live")
        assert b.api("PATCH", f"{path}/ban")[0] == 200
        assert a.api("PATCH", f"{path}/unban")[0] == 200
        wait_for(lambda: len(receiver.requests) >= len(events), 20, message="every event")
        time.sleep(2)  # nothing twice
        received = Counter(payload["event"] for payload, _, _ in receiver.requests)
        assert received == Counter(events)
    finally:
        receiver.close()


def test_the_stream_survives_a_redis_restart(cluster, processes):
    node = cluster("a")
    stream = node.create_livestream(reconnect_window_s=5, record=False)
    made_before = node.create_livestream(name="acknowledged before the restart")
    ffmpeg_publish(processes, node.rtmp_url(stream["stream_key"]), seconds=60)
    media_url = node.wait_playable(stream["playback_id"])

    def sequence() -> int:
        """The number of the newest segment in the playlist."""
        _status, body, _ = node.get(media_url)
        first = int(re.search(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)", body).group(1))
        return first + body.count(b"#EXTINF")

    cluster.redis.kill()
    status, body = node.api("GET", "/v1/livestreams")
    assert status == 503 and body["error"]["code"] == "unavailable", body
    status, raw, _ = node.get("/healthz")
    assert status == 503 and json.loads(raw)["redis"] == "unreachable"
    before = sequence()
    time.sleep(3)
    assert sequence() > before  # viewers still get new media
    cluster.redis.start()
    wait_for(lambda: node.get("/healthz")[0] == 200, 15, message="healthz after the restart")
    assert node.api("GET", f"/v1/livestreams/{made_before['id']}")[0] == 200
    wait_for(lambda: _status(node, stream["id"]) == "live", 10, message="still live")
    assert sequence() > before


def test_healthz_says_when_storage_does_not_answer(processes, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    node = LiveProcess(
        processes, tmp_path / "data", "--storage", "s3://nowhere/recordings",
        env={"LIVE_S3_ENDPOINT": f"http://127.0.0.1:{dead_port}",
             "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
             "AWS_DEFAULT_REGION": "us-east-1"},
    )  # fmt: skip
    status, raw, _ = node.get("/healthz", timeout=30)
    assert status == 503, raw
    assert json.loads(raw)["storage"] == "unreachable"
