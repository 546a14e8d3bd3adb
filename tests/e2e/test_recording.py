"""Recordings end to end: the ffmpeg CLI publishes over RTMP, the server records,
and ffprobe / PyAV / plain HTTP check the VOD asset."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import av
import m3u8
import pytest
from harness import (
    LiveProcess,
    Processes,
    count_frames,
    ffmpeg_publish,
    ffprobe_streams,
    wait_for,
)

pytestmark = pytest.mark.e2e

FPS = 30


def assets_of(live: LiveProcess, livestream_id: str) -> list[dict]:
    status, body = live.api("GET", f"/v1/assets?livestream_id={livestream_id}")
    assert status == 200, body
    return body["data"]


def wait_ready(live: LiveProcess, livestream_id: str, count: int = 1, timeout: float = 30):
    def ready():
        assets = assets_of(live, livestream_id)
        failed = [a for a in assets if a["status"] == "failed"]
        assert not failed, failed
        done = [a for a in assets if a["status"] == "ready"]
        return len(done) == count and assets

    return wait_for(ready, timeout, interval=0.25, message=f"{count} ready asset(s)")


def download(live: LiveProcess, url: str, path: Path) -> Path:
    status, body, _ = live.get(url, timeout=30)
    assert status == 200
    path.write_bytes(body)
    return path


def publish_with_progress(processes: Processes, url: str, progress: Path, seconds: float):
    """ffmpeg that writes how many frames it has sent, ten times a second."""
    return ffmpeg_publish(
        processes, url, seconds=seconds,
        extra_output=("-progress", str(progress), "-stats_period", "0.1"),
    )  # fmt: skip


def frames_sent(progress: Path) -> int:
    found = re.findall(r"^frame=(\d+)$", progress.read_text(), re.MULTILINE)
    return int(found[-1]) if found else 0


def test_a_broadcast_becomes_a_vod_asset(live, processes, tmp_path):
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=10)
    live.wait_playable(stream["playback_id"])
    (asset,) = wait_for(lambda: assets_of(live, stream["id"]), 5, message="an asset")
    assert asset["status"] == "recording"
    assert publisher.wait(30) == 0
    (asset,) = wait_ready(live, stream["id"])
    assert set(asset) == {"id", "name", "source", "livestream_id", "session_id", "status",
                          "error", "progress", "duration_s", "size_bytes", "hls_url", "mp4_url",
                          "poster_url", "sprite_url", "thumbnails_vtt_url", "origin_url",
                          "clip_start_s", "clip_duration_s", "transcode", "renditions",
                          "original", "created_at", "ready_at"}  # fmt: skip
    assert asset["source"] == "recording"
    assert asset["error"] is None and asset["size_bytes"] > 0
    assert asset["mp4_url"] == f"{live.http}/vod/{asset['id']}/download.mp4"
    (session,) = live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"]
    assert session["asset_id"] == asset["id"]
    assert live.api("GET", f"/v1/assets/{asset['id']}") == (200, asset)

    mp4 = download(live, asset["mp4_url"], tmp_path / "download.mp4")
    assert count_frames(mp4) == 10 * FPS  # every frame sent, not one more or less

    playlist = m3u8.loads(live.get(asset["hls_url"])[1].decode())
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    durations = [segment.duration for segment in playlist.segments]
    assert abs(sum(durations) - 10.0) <= max(durations)
    assert abs(asset["duration_s"] - sum(durations)) < 0.01
    assert count_frames(asset["hls_url"]) == 10 * FPS  # the HLS asset plays too

    status, poster, headers = live.get(asset["poster_url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert poster[:2] == b"\xff\xd8"
    (tmp_path / "poster.jpg").write_bytes(poster)
    with av.open(str(tmp_path / "poster.jpg")) as image:
        frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (640, 360)

    # the sprite's WebVTT cues cover the asset's duration and point into the sheet
    status, vtt, headers = live.get(asset["thumbnails_vtt_url"])
    assert status == 200 and headers["Content-Type"].startswith("text/vtt")
    cues = [line for line in vtt.decode().splitlines() if "-->" in line]
    assert cues[0].startswith("00:00:00.000 -->")
    last_end = cues[-1].split(" --> ")[1]
    assert abs(float(last_end.split(":")[-1]) - asset["duration_s"]) < 0.05
    assert live.get(asset["sprite_url"])[1][:2] == b"\xff\xd8"

    # ranges and CORS, for the MP4 and the segments
    segment_url = f"{live.http}/vod/{asset['id']}/{playlist.segments[1].uri}"
    segment = live.get(segment_url)[1]
    for url, whole in ((asset["mp4_url"], mp4.read_bytes()), (segment_url, segment)):
        request = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 206
            assert response.read() == whole[100:200]
            assert response.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
            assert response.headers["Access-Control-Allow-Origin"] == "*"

    # delete: the record and the files go
    assert live.api("DELETE", f"/v1/assets/{asset['id']}")[0] == 204
    status, body = live.api("GET", f"/v1/assets/{asset['id']}")
    assert status == 404 and body["error"]["code"] == "asset_not_found"
    status, _, headers = live.get(asset["mp4_url"])
    assert status == 404 and headers["Access-Control-Allow-Origin"] == "*"
    assert not (live.data_dir / "recordings" / "assets" / asset["id"]).exists()


def test_record_false_makes_no_asset(live, processes):
    stream = live.create_livestream(reconnect_window_s=0, record=False)
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=2)
    live.wait_playable(stream["playback_id"])
    assert publisher.wait(30) == 0
    path = f"/v1/livestreams/{stream['id']}"
    wait_for(lambda: live.api("GET", path)[1]["status"] == "idle", 10, message="idle")
    (session,) = live.api("GET", f"{path}/history")[1]["data"]
    assert session["asset_id"] is None
    assert assets_of(live, stream["id"]) == []


def test_a_reconnect_inside_the_window_is_one_asset(live, processes, tmp_path):
    stream = live.create_livestream(reconnect_window_s=4)
    url = live.rtmp_url(stream["stream_key"])
    progress = tmp_path / "first.txt"
    first = publish_with_progress(processes, url, progress, 30)
    live.wait_playable(stream["playback_id"])
    time.sleep(2)
    first.kill()  # the connection drops without an unpublish
    first.wait(5)
    sent_first = frames_sent(progress)
    path = f"/v1/livestreams/{stream['id']}"

    def reconnecting():
        current = live.api("GET", path)[1]["current_session"]
        return current is not None and current["reconnecting"]

    wait_for(reconnecting, 5, message="the session to wait for its publisher")
    assert ffmpeg_publish(processes, url, seconds=3).wait(30) == 0  # a clean end
    (asset,) = wait_ready(live, stream["id"])
    assert live.api("GET", f"{path}/history")[1]["total"] == 1
    playlist = m3u8.loads(live.get(asset["hls_url"])[1].decode())
    assert [s.discontinuity for s in playlist.segments].count(True) == 1
    frames = count_frames(download(live, asset["mp4_url"], tmp_path / "a.mp4"))
    # both parts: all of the second, the first up to where its connection dropped
    # (ffmpeg's progress report, killed with it, lags by up to 0.1 s = 3 frames)
    assert 3 * FPS + sent_first - 15 <= frames <= 3 * FPS + sent_first + 3, (sent_first, frames)
    assert abs(asset["duration_s"] - frames / FPS) < 0.2


def test_a_return_after_the_window_is_a_second_asset(live, processes):
    stream = live.create_livestream(reconnect_window_s=1)
    url = live.rtmp_url(stream["stream_key"])
    first = ffmpeg_publish(processes, url, seconds=30)
    live.wait_playable(stream["playback_id"])
    first.kill()
    first.wait(5)
    path = f"/v1/livestreams/{stream['id']}"
    wait_for(lambda: live.api("GET", path)[1]["status"] == "idle", 10, message="idle")
    assert ffmpeg_publish(processes, url, seconds=2).wait(30) == 0
    assets = wait_ready(live, stream["id"], count=2)
    sessions = live.api("GET", f"{path}/history")[1]["data"]
    assert {s["asset_id"] for s in sessions} == {a["id"] for a in assets}
    assert len({a["session_id"] for a in assets}) == 2


def _session_and_asset(data_dir: Path) -> tuple[sqlite3.Row, sqlite3.Row]:
    """Read the database of a server that has exited."""
    with sqlite3.connect(data_dir / "live.db") as db:
        db.row_factory = sqlite3.Row
        (session,) = db.execute("SELECT * FROM sessions").fetchall()
        (asset,) = db.execute("SELECT * FROM assets").fetchall()
    return session, asset


def test_sigkill_loses_at_most_the_part_under_way(processes, tmp_path):
    data_dir = tmp_path / "data"
    live = LiveProcess(processes, data_dir)
    stream = live.create_livestream()
    progress = tmp_path / "progress.txt"
    publisher = publish_with_progress(processes, live.rtmp_url(stream["stream_key"]), progress, 30)
    started = time.monotonic()
    live.wait_playable(stream["playback_id"])
    time.sleep(max(0.0, 8 - (time.monotonic() - started)))
    sent_before_the_kill = frames_sent(progress)
    live.stop(signal.SIGKILL)
    # ffmpeg goes on sending between the read above and the kill; once its connection
    # is gone, what it counted bounds what the server can have received.
    publisher.wait(10)
    sent = frames_sent(progress)
    assert sent_before_the_kill > 6 * FPS

    restarted = LiveProcess(processes, data_dir)
    (session,) = restarted.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"]
    assert session["end_reason"] == "error"
    (asset,) = wait_ready(restarted, stream["id"])
    assert session["asset_id"] == asset["id"]
    frames = count_frames(download(restarted, asset["mp4_url"], tmp_path / "k.mp4"))
    # The segment under way was journalled part by part and stored at the restart:
    # lost at most the part being journalled and the one the packager was making
    # (6 frames each), the frame that closes it and the one the timeline holds for
    # its duration, and what was between ffmpeg's encoder and the packager (the
    # progress report's 0.1 s lag, socket buffers: up to a second on a busy
    # machine). Without the journal a kill 8 s in loses 0-5 s.
    assert sent_before_the_kill - (2 * 6 + 2 + FPS) <= frames <= sent, (sent, frames)
    assert not list((data_dir / "journal").iterdir())  # stored, then deleted
    restarted.stop()


def test_sigterm_finalises_every_frame_before_exit(processes, tmp_path):
    data_dir = tmp_path / "data"
    live = LiveProcess(processes, data_dir)
    stream = live.create_livestream()
    progress = tmp_path / "progress.txt"
    publisher = publish_with_progress(processes, live.rtmp_url(stream["stream_key"]), progress, 30)
    started = time.monotonic()
    live.wait_playable(stream["playback_id"])
    time.sleep(max(0.0, 8 - (time.monotonic() - started)))
    assert live.stop(signal.SIGTERM, timeout=60) == 0
    publisher.wait(10)  # its connection was closed: what it counted is all it sent
    sent = frames_sent(progress)

    session, asset = _session_and_asset(data_dir)  # as the server left them
    assert session["end_reason"] == "server_shutdown"
    assert asset["status"] == "ready", asset["error"]
    mp4 = data_dir / "recordings" / "assets" / asset["id"] / "download.mp4"
    frames = count_frames(mp4)
    # Every frame the server received: ffmpeg may count a few it could not send
    # any more once the connection was closed.
    assert sent - 10 <= frames <= sent, (sent, frames)


def test_a_full_disk_fails_the_asset_and_the_stream_plays_on(processes, tmp_path):
    """Recordings on a 1 MB tmpfs, mounted in a private mount namespace."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()

    class InTinyTmpfs(Processes):
        def popen(self, command, **kwargs):
            # as root a mount namespace is enough; otherwise a user namespace too
            namespaces = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
            wrapped = ["unshare", *namespaces, "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs -o size=1m tmpfs "$1" && shift && exec "$@"',
                       "sh", str(recordings), *command]  # fmt: skip
            return processes.popen(wrapped, **kwargs)

    live = LiveProcess(InTinyTmpfs(), tmp_path / "data",
                       env={"LIVE_RECORDINGS_DIR": str(recordings)})  # fmt: skip
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = ffmpeg_publish(
        processes,
        live.rtmp_url(stream["stream_key"]),
        seconds=20,
        extra_output=("-b:v", "3M", "-maxrate", "3M", "-bufsize", "1M"),
    )
    media_url = live.wait_playable(stream["playback_id"])

    def failed():
        assets = assets_of(live, stream["id"])
        return assets and assets[0]["status"] == "failed" and assets[0]

    asset = wait_for(failed, 15, interval=0.25, message="the asset to fail")
    assert asset["error"]["code"] == "processing_failed", asset["error"]
    assert "disk is full" in asset["error"]["message"], asset["error"]
    assert not (recordings / "assets").exists()  # the tmpfs is the server's alone

    # the live stream goes on: new media in the playlist, playable with ffprobe
    def next_msn() -> int:
        playlist = m3u8.loads(live.get(media_url)[1].decode())
        assert not playlist.is_endlist
        return playlist.media_sequence + len(playlist.segments)

    first = next_msn()
    time.sleep(2.5)
    assert next_msn() >= first + 2
    assert live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["status"] == "live"
    kinds = {s["codec_type"] for s in ffprobe_streams(media_url)}
    assert kinds == {"video", "audio"}
    publisher.kill()
    live.stop()
