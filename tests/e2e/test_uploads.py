"""Uploads against the real server with a real tus client (tuspy): 1 MB chunks, the
connection cut in the middle of a chunk, a fresh client resuming from the offset
the server answers to HEAD, and the stored source byte for byte the file sent."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from harness import API_KEY, LiveProcess
from tcp_cutter import TcpCutter
from tusclient import client as tus

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


def _offset(uploader) -> int:
    return uploader.get_offset()


def test_tuspy_resumes_after_the_connection_is_cut_mid_chunk(processes, tmp_path: Path):
    live = LiveProcess(processes, tmp_path / "data")
    cutter: TcpCutter | None = None
    try:
        source = tmp_path / "show.mp4"
        data = os.urandom(7 * MB + 12345)
        source.write_bytes(data)
        status, asset = live.api("POST", "/v1/assets", {"name": "last week's show"})
        assert status == 201 and asset["status"] == "empty"
        assert asset["upload"]["tus_url"] == f"{live.http}/v1/uploads"
        direct = tus.TusClient(asset["upload"]["tus_url"], headers={"X-API-Key": API_KEY})
        metadata = {"asset_id": asset["id"], "filename": source.name}
        first = direct.uploader(str(source), chunk_size=MB, metadata=metadata)
        location = first.create_url()

        # the first client goes through a slow relay that cuts it off 3.75 MB in,
        # three quarters into its fourth chunk
        cutter = TcpCutter(live.ports["HTTP"], cut_after=3 * MB + 3 * MB // 4)
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
            if resumed_at > 3 * MB + MB // 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # what the server had read of the cut chunk is kept (all but what was still
        # in its socket buffers when the connection went)
        assert 3 * MB + MB // 2 < resumed_at < 3 * MB + 3 * MB // 4
        fresh.offset = resumed_at
        fresh.upload()
        assert fresh.offset == len(data)

        stored = tmp_path / "data" / "recordings" / "assets" / asset["id"] / "source"
        assert stored.read_bytes() == data
        status, body = live.api("GET", f"/v1/assets/{asset['id']}")
        assert status == 200 and body["status"] == "pending" and "upload" not in body
        status, _ = live.api("HEAD", location.replace(live.http, ""))
        assert status in (404, 412)  # the upload is finished and gone
    finally:
        if cutter is not None:
            cutter.close()
        live.stop()
    assert "Traceback" not in "".join(live.output)
