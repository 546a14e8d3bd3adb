"""A real `live serve` processing an upload: killed with SIGKILL in the middle of
a job and restarted, the job resumes and the asset becomes ready; and hls.js in
headless Chromium plays the result.

The asset is put where the upload side leaves it (its file in storage, `pending`,
its job queued in the store), with the store and storage classes the server uses,
on the server's own data directory."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from browser import PageServer, open_chromium
from harness import LiveProcess, Processes
from vod_testing import decode_errors, duration_of, make_source, put_source

from live.storage import LocalStorage
from live.store import SqliteStore

pytestmark = pytest.mark.e2e
# the server's VOD work at normal priority: other tests' processes share this machine
ENV = {"LIVE_VOD_PRIORITY": "normal", "LIVE_LADDER_PRESET": "ultrafast"}


async def _queue_upload(data_dir: Path, source: Path) -> str:
    store = await SqliteStore.open(data_dir / "live.db")
    try:
        asset = await put_source(store, LocalStorage(data_dir / "recordings"), source)
        await store.enqueue_vod_job(asset.id)  # what `VodJobs.submit` writes
        return asset.id
    finally:
        await store.close()


def _wait_asset(live: LiveProcess, asset_id: str, done, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, asset = live.api("GET", f"/v1/assets/{asset_id}")
        assert status == 200, asset
        if done(asset):
            return asset
        time.sleep(0.1)
    raise AssertionError(f"asset {asset_id} stuck: {asset}\n" + "".join(live.output[-40:]))


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_job_killed_mid_processing_resumes_after_a_restart(processes: Processes, tmp_path):
    data_dir = tmp_path / "data"
    source = make_source(tmp_path / "source.mp4", 20)
    first = LiveProcess(processes, data_dir, env=ENV)
    asset_id = asyncio.run(_queue_upload(data_dir, source))
    working = _wait_asset(
        first, asset_id, lambda a: a["status"] in ("processing", "viewable") and a["progress"] > 0
    )
    assert working["status"] != "ready"
    encoders = _children(first.process.pid)
    assert encoders, "no VOD child process"
    first.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10  # the encoder dies with its server
    while any(Path(f"/proc/{pid}").exists() for pid in encoders) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in encoders)

    second = LiveProcess(processes, data_dir, env=ENV)
    try:
        done = _wait_asset(second, asset_id, lambda a: a["status"] in ("ready", "failed"))
        assert done["status"] == "ready", done["error"]
        assert [r["height"] for r in done["renditions"]] == [720, 480, 360]
        index = f"{second.http}/vod/{asset_id}/index.m3u8"
        for name in ("720p", "480p", "360p", "audio"):
            url = f"{second.http}/vod/{asset_id}/{name}.m3u8"
            assert decode_errors(url) == "", name
            assert abs(duration_of(url) - duration_of(source)) < 0.1, name
        assert decode_errors(index) == ""
        assert decode_errors(done["mp4_url"]) == ""
        assert not list((data_dir / "recordings" / ".scratch").glob("vod-*"))
    finally:
        second.stop()


def test_hlsjs_plays_a_processed_upload(processes: Processes, tmp_path):
    data_dir = tmp_path / "data"
    source = make_source(tmp_path / "source.mp4", 8)
    live = LiveProcess(processes, data_dir, env=ENV)
    page_server = PageServer()
    try:
        asset_id = asyncio.run(_queue_upload(data_dir, source))
        done = _wait_asset(live, asset_id, lambda a: a["status"] in ("ready", "failed"))
        assert done["status"] == "ready", done["error"]
        open_chromium(processes, page_server.player_url(done["hls_url"], 5), tmp_path / "profile")
        report = page_server.wait_report(60)
        assert not [e for e in report["errors"] if e["fatal"]], report["errors"]
        assert report["playingAt"] is not None, report
        playing = [s for s in report["samples"] if s["t"] >= report["playingAt"]]
        assert playing[-1]["currentTime"] - playing[0]["currentTime"] >= 3.0, playing
    finally:
        page_server.close()
        live.stop()
