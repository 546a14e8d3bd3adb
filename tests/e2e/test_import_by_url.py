"""An import by URL from end to end against the real server: the origin (run by the
test) demands the header given in `origin_http_headers`; the asset, clipped to 10 s
from 5 s in, becomes `ready`, lasts 10 s to the frame and starts with the source's
frame at 5 s."""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest
from aiohttp import web
from harness import LiveProcess
from origin_thread import ThreadedOrigin
from vod_testing import FPS, decode_errors, duration_of, make_source

pytestmark = pytest.mark.e2e

ENV = {"LIVE_VOD_PRIORITY": "normal", "LIVE_LADDER_PRESET": "ultrafast"}
TOKEN = "Bearer imp0rt-t0ken"


class Origin(ThreadedOrigin):
    """Serves one file on loopback, only to a request that carries the token."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refused = 0
        super().__init__()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != TOKEN:
            self.refused += 1
            return web.Response(status=403)
        return web.FileResponse(self.path)


def _frames(url_or_path: str, count: int, skip: int = 0) -> list[bytes]:
    """`count` decoded frames as small grey pictures, enough to tell frames apart."""
    out: list[bytes] = []
    with av.open(url_or_path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < skip:
                continue
            grey = frame.reformat(width=64, height=36, format="gray")
            plane = grey.planes[0]
            rows = bytes(plane)
            out.append(
                b"".join(rows[y * plane.line_size : y * plane.line_size + 64] for y in range(36))
            )
            if len(out) == count:
                break
    return out


def _difference(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_an_import_with_the_origins_header_and_a_clip_becomes_ready(processes, tmp_path):
    source = make_source(tmp_path / "show.mp4", 20)
    origin = Origin(source)
    live = LiveProcess(processes, tmp_path / "data", env=ENV)
    try:
        url = f"http://127.0.0.1:{origin.port}/show.mp4"
        status, asset = live.api("POST", "/v1/assets", {
            "name": "imported", "origin_url": url,
            "origin_http_headers": f"Authorization: {TOKEN}",
            "clip_start_s": 5, "clip_duration_s": 10,
        })  # fmt: skip
        assert status == 201 and asset["status"] == "pending", asset
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, asset = live.api("GET", f"/v1/assets/{asset['id']}")
            if asset["status"] in ("ready", "failed"):
                break
            time.sleep(0.1)
        assert asset["status"] == "ready", (asset, "".join(live.output[-30:]))
        assert origin.refused == 0  # the header went with every request
        assert asset["source"] == "url" and asset["origin_url"] == url
        assert abs(asset["duration_s"] - 10) <= 1 / FPS + 0.01
        top = f"{live.http}/vod/{asset['id']}/720p.m3u8"
        assert decode_errors(top) == ""
        assert abs(duration_of(top) - 10) <= 1 / FPS + 0.05
        # the first frame is the source's frame at 5 s, not one of its neighbours
        first = _frames(top, 1)[0]
        near = _frames(str(source), 3, skip=5 * FPS - 1)
        differences = [_difference(first, frame) for frame in near]
        assert differences[1] < min(differences[0], differences[2]), differences
    finally:
        live.stop()
        origin.close()
    assert "Traceback" not in "".join(live.output)
