"""An upload from end to end against the real server: a real tus client (tuspy)
sends a 30 s 1280x720 H.264/AAC file in 1 MB chunks, the connection is cut in the
middle of a chunk, a fresh client resumes from the offset the server answers to
HEAD, the stored source is byte for byte the file sent; then the asset goes
`empty -> pending -> processing -> viewable -> ready`, its webhooks arrive in that
order, every rendition decodes to the source's duration, and hls.js in headless
Chromium plays it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser import PageServer, open_chromium
from harness import API_KEY, LiveProcess
from receiver import Receiver
from tcp_cutter import TcpCutter
from tusclient import client as tus
from vod_testing import decode_errors, duration_of, make_source

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
# the server's VOD work at normal priority: other tests' processes share this machine
ENV = {"LIVE_VOD_PRIORITY": "normal", "LIVE_LADDER_PRESET": "ultrafast"}
STATUS_ORDER = ["empty", "pending", "processing", "viewable", "ready"]
ASSET_EVENTS = ["asset.created", "asset.viewable", "asset.ready", "asset.failed"]


def _offset(uploader) -> int:
    return uploader.get_offset()


def _follow_until_done(live: LiveProcess, asset_id: str, timeout: float = 240) -> list[dict]:
    """The asset as seen every 50 ms until it is ready or failed."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, asset = live.api("GET", f"/v1/assets/{asset_id}")
        assert status == 200, asset
        if not seen or seen[-1]["status"] != asset["status"]:
            seen.append(asset)
        if asset["status"] in ("ready", "failed"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"asset {asset_id} stuck: {seen[-1]}\n" + "".join(live.output[-40:]))


def test_an_upload_cut_and_resumed_becomes_a_ladder_that_plays(processes, tmp_path: Path):
    live = LiveProcess(processes, tmp_path / "data", env=ENV)
    cutter: TcpCutter | None = None
    receiver = Receiver()
    page_server = PageServer()
    try:
        status, hook = live.api(
            "POST", "/v1/webhooks", {"url": receiver.url, "events": ASSET_EVENTS}
        )
        assert status == 201, hook
        source = make_source(tmp_path / "show.mp4", 30)
        data = source.read_bytes()
        status, asset = live.api("POST", "/v1/assets", {"name": "last week's show"})
        assert status == 201 and asset["status"] == "empty"
        assert asset["upload"]["tus_url"] == f"{live.http}/v1/uploads"
        direct = tus.TusClient(asset["upload"]["tus_url"], headers={"X-API-Key": API_KEY})
        metadata = {"asset_id": asset["id"], "filename": source.name}
        first = direct.uploader(str(source), chunk_size=MB, metadata=metadata)
        location = first.create_url()

        # the first client goes through a slow relay that cuts it off halfway,
        # three quarters into a chunk
        whole_chunks = len(data) // 2 // MB
        cut_at = whole_chunks * MB + 3 * MB // 4
        assert cut_at < len(data)
        # the first client goes through a slow relay that cuts it off 3.75 MB in,
        # three quarters into its fourth chunk
        cutter = TcpCutter(live.ports["HTTP"], cut_after=cut_at)
        relayed_url = location.replace(f":{live.ports['HTTP']}/", f":{cutter.port}/")
        relayed = tus.TusClient(relayed_url, headers={"X-API-Key": API_KEY})
        cut_client = relayed.uploader(str(source), url=relayed_url, chunk_size=MB)
        with pytest.raises(Exception):  # noqa: B017 - tuspy wraps the reset its own way
            cut_client.upload()
        assert cutter.cut.is_set()

        # the server keeps what arrived; a fresh client asks where to go on from
        fresh = direct.uploader(str(source), url=location, chunk_size=MB)
        deadline = time.monotonic() + 10
        while True:
            resumed_at = _offset(fresh)
            if resumed_at > cut_at - MB // 4 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # what the server had read of the cut chunk is kept (all but what was still
        # in its socket buffers when the connection went)
        assert cut_at - MB // 4 < resumed_at < cut_at
        fresh.offset = resumed_at
        fresh.upload()
        assert fresh.offset == len(data)

        stored = tmp_path / "data" / "recordings" / "assets" / asset["id"] / "source"
        assert stored.read_bytes() == data
        status, _ = live.api("HEAD", location.replace(live.http, ""))
        assert status in (404, 412)  # the upload is finished and gone

        seen = _follow_until_done(live, asset["id"])
        done = seen[-1]
        assert done["status"] == "ready", done["error"]
        statuses = ["empty"] + [a["status"] for a in seen]
        assert statuses == [s for s in STATUS_ORDER if s in statuses], statuses
        assert "viewable" in statuses  # the first rendition played before the rest
        assert all("upload" not in a for a in seen)
        assert [r["height"] for r in done["renditions"]] == [720, 480, 360]
        assert done["original"]["size_bytes"] == len(data)
        assert abs(done["duration_s"] - 30) < 0.1

        deadline = time.monotonic() + 30
        while len(receiver.events()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        events = list(receiver.events().values())  # in the order they arrived
        assert [e["event"] for e in events] == ["asset.created", "asset.viewable", "asset.ready"]
        assert all(e["data"]["id"] == asset["id"] for e in events)

        for name in ("720p", "480p", "360p", "audio"):
            url = f"{live.http}/vod/{asset['id']}/{name}.m3u8"
            assert decode_errors(url) == "", name
            assert abs(duration_of(url) - duration_of(source)) < 0.1, name
        open_chromium(processes, page_server.player_url(done["hls_url"], 5), tmp_path / "profile")
        report = page_server.wait_report(60)
        assert not [e for e in report["errors"] if e["fatal"]], report["errors"]
        assert report["playingAt"] is not None, report
    finally:
        if cutter is not None:
            cutter.close()
        page_server.close()
        receiver.close()
        live.stop()
    assert "Traceback" not in "".join(live.output)
