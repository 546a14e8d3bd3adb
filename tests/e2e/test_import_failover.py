"""An import by URL in a cluster of two `live serve` nodes sharing a real
redis-server and an S3 bucket (moto): a node that starts while another fetches an
import leaves it alone, and when the fetching node is killed the other takes the
import over, fetches it again from the start and the asset becomes ready.

The origin (run by the test on loopback) serves a real media file; its first
answer trickles, so that the first node is still fetching when it is killed."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
from aiohttp import web
from harness import LiveProcess, RedisProcess, wait_for
from origin_thread import ThreadedOrigin
from vod_testing import make_source

pytestmark = pytest.mark.e2e

ENV = {"LIVE_VOD_PRIORITY": "normal", "LIVE_LADDER_PRESET": "ultrafast"}
PIECE = 8 * 1024


class SlowOrigin(ThreadedOrigin):
    """Serves one file: the first request a piece every `first_pause_s` (it cannot
    end before the test is done with it), the next ones at once. Records, per
    request, whether its answer was sent whole, and how many ran at once at most."""

    def __init__(self, path: Path, first_pause_s: float = 0.5) -> None:
        self.data = path.read_bytes()
        self.first_pause_s = first_pause_s
        self.requests: list[str] = []  # "sending", "whole" or "cut", per request
        self.most_at_once = 0
        self._at_once = 0
        super().__init__()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        number = len(self.requests)
        self.requests.append("sending")
        pause = self.first_pause_s if number == 0 else 0.0
        self._at_once += 1
        self.most_at_once = max(self.most_at_once, self._at_once)
        response = web.StreamResponse(
            headers={"Content-Length": str(len(self.data)), "Content-Type": "video/mp4"}
        )
        try:
            await response.prepare(request)
            for start in range(0, len(self.data), PIECE):
                await asyncio.sleep(pause)
                await response.write(self.data[start : start + PIECE])
            await response.write_eof()
            self.requests[number] = "whole"
        except ConnectionError:  # the fetching node is gone
            self.requests[number] = "cut"
        except asyncio.CancelledError:
            self.requests[number] = "cut"
            raise
        finally:
            self._at_once -= 1
        return response


def _node_id(node: LiveProcess) -> str:
    return json.loads(node.get("/healthz")[1])["node"]["id"]


def _log(node: LiveProcess) -> str:
    return "".join(node.output)


def test_a_killed_nodes_import_is_finished_by_the_other_and_never_fetched_twice_at_once(
    processes, tmp_path, s3_bucket
):
    source = make_source(tmp_path / "show.mp4", 4, size="640x360")
    origin = SlowOrigin(source)
    redis = RedisProcess(processes, appendonly=True)
    nodes: list[LiveProcess] = []

    def node(name: str) -> LiveProcess:
        server = LiveProcess(
            processes, tmp_path / name, "--redis", redis.url,
            "--storage", s3_bucket.url, env={**ENV, **s3_bucket.env},
        )  # fmt: skip
        nodes.append(server)
        return server

    try:
        a = node("a")
        url = f"http://127.0.0.1:{origin.port}/show.mp4"
        status, asset = a.api("POST", "/v1/assets", {"name": "imported", "origin_url": url})
        assert status == 201 and asset["status"] == "pending", asset
        path = f"/v1/assets/{asset['id']}"
        wait_for(lambda: origin.requests == ["sending"], 10, message="a to fetch")

        # b starts while a fetches: it must leave a's import alone
        b = node("b")
        b_id = _node_id(b)
        time.sleep(8)  # more than b's look at the queue (5 s), less than a lease (15 s)
        assert origin.requests == ["sending"], origin.requests
        assert f"import of {asset['id']}" not in _log(b)
        assert b.api("GET", path)[1]["status"] == "pending"

        a.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        done = wait_for(
            lambda: (found := b.api("GET", path)[1])["status"] in ("ready", "failed") and found,
            90, interval=0.5, message="b to finish the import",
        )  # fmt: skip
        took = time.monotonic() - killed_at
        print(f"ready through b {took:.1f} s after a was killed")
        assert done["status"] == "ready", (done, _log(b)[-3000:])
        assert done["source"] == "url" and abs(done["duration_s"] - 4) < 0.5
        # a's answer was cut by the kill; b fetched the file again, whole, alone
        wait_for(lambda: origin.requests[0] != "sending", 10, message="a's fetch to end")
        assert origin.requests == ["cut", "whole"], origin.requests
        assert origin.most_at_once == 1
        assert f"import of {asset['id']}: fetching again from the start on {b_id}" in _log(b)
        assert "Traceback" not in _log(b)
        keys = s3_bucket.object_keys()
        assert any(key.endswith(f"assets/{asset['id']}/source") for key in keys), keys
    finally:
        for server in nodes:
            server.stop()
            print(f"--- node {server.data_dir.name}:\n" + "".join(server.output[-60:]))
        origin.close()
