"""Two nodes sharing one redis-server on loopback: how fast a ban reaches the node that
holds the publisher, and what a part costs in latency when a viewer's node proxies it
from the node that runs the stream.

Ban propagation: the livestream is created on node B, the ffmpeg CLI publishes to
node A; once the stream is live, `PATCH .../ban` goes to B and the clock runs until
ffmpeg's process has exited (A closed its connection). Then unban, publish again;
`--bans` rounds (50 by default). The goal is under 1 s.

Proxy latency: an LL-HLS client asks A (the owner) and B (which proxies to A) for the
same preload-hinted part at the same moment; per part, the difference between the
moments the two bodies were complete is what the extra hop costs.

    .venv/bin/python bench/cluster.py [--bans 50] [--parts 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LiveServer, Reaper, exit_on_sigterm, free_port, percentile

_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')


def start_redis(reaper: Reaper, directory: Path) -> str:
    port = free_port()
    reaper.popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def api(node: LiveServer, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        node.http + path,
        data=data,
        method=method,
        headers={"X-API-Key": node.api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else {}


def publish(reaper: Reaper, url: str, seconds: int = 120) -> subprocess.Popen:
    return reaper.popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-f",
            "flv",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_live(node: LiveServer, livestream_id: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api(node, "GET", f"/v1/livestreams/{livestream_id}")["status"] == "live":
            return
        time.sleep(0.05)
    raise RuntimeError("the stream did not go live")


def ban_rounds(reaper: Reaper, a: LiveServer, b: LiveServer, rounds: int) -> list[float]:
    stream = b.create_livestream("bans")
    path = f"/v1/livestreams/{stream['id']}"
    delays = []
    for _ in range(rounds):
        publisher = publish(reaper, a.rtmp_url(stream["stream_key"]))
        wait_live(b, stream["id"])
        started = time.monotonic()
        api(b, "PATCH", f"{path}/ban", {"reason": "bench"})
        while publisher.poll() is None:
            time.sleep(0.002)
            if time.monotonic() - started > 10:
                raise RuntimeError("the ban did not cut the publisher within 10 s")
        delays.append(time.monotonic() - started)
        api(b, "PATCH", f"{path}/unban")
        time.sleep(0.2)  # the ended session's recording and events settle
    return delays


async def proxy_latency(a: LiveServer, b: LiveServer, playback_id: str, parts: int) -> list[float]:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{a.http}/live/{playback_id}/index.m3u8") as response:
            text = await response.text()
        media = next(line for line in text.splitlines() if line and not line.startswith("#"))
        differences = []

        async def fetch(url: str) -> float:
            async with client.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status}")
            return time.monotonic()

        while len(differences) < parts:
            async with client.get(f"{a.http}/live/{playback_id}/{media}") as response:
                playlist = await response.text()
            hint = _HINT.search(playlist)
            if hint is None:
                await asyncio.sleep(0.05)
                continue
            base = media.rsplit("/", 1)[0] if "/" in media else ""
            uri = f"/live/{playback_id}/{base + '/' if base else ''}{hint.group(1)}"
            direct, proxied = await asyncio.gather(fetch(a.http + uri), fetch(b.http + uri))
            differences.append(proxied - direct)
        return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bans", type=int, default=50)
    parser.add_argument("--parts", type=int, default=100)
    args = parser.parse_args()
    exit_on_sigterm()
    reaper = Reaper()
    scratch = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        redis_url = start_redis(reaper, scratch)
        env = {"LIVE_VIEWER_STATS": "false", "LIVE_API_RATE_LIMIT_PER_MIN": "0"}
        a = LiveServer(
            reaper,
            scratch / "a",
            env,
            "--redis",
            redis_url,
            "--storage",
            str(scratch / "recordings"),
        )
        b = LiveServer(
            reaper,
            scratch / "b",
            env,
            "--redis",
            redis_url,
            "--storage",
            str(scratch / "recordings"),
            api_key=a.api_key,
        )
        delays = ban_rounds(reaper, a, b, args.bans)
        print(
            f"ban on b -> a's publisher cut, {len(delays)} bans: "
            f"p50 {percentile(delays, 50) * 1000:.0f} ms, "
            f"p99 {percentile(delays, 99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
        )

        stream = b.create_livestream("proxy")
        publish(reaper, a.rtmp_url(stream["stream_key"]))
        wait_live(b, stream["id"])
        time.sleep(2)
        differences = asyncio.run(proxy_latency(a, b, stream["playback_id"], args.parts))
        print(
            f"a part through the non-owner node, {len(differences)} parts: extra "
            f"p50 {percentile(differences, 50) * 1000:.1f} ms, "
            f"p99 {percentile(differences, 99) * 1000:.1f} ms"
        )
    finally:
        reaper.end_all()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
