"""Viewer accounting cost: 1,000 simulated viewers polling one live stream.

Runs the real HLS handlers (a synthetic stream that gains a 200 ms part every 200 ms)
in a child process twice, with viewer accounting off and on, while one load process
plays 1,000 viewers: each fetches the multivariant playlist once (getting its player
id), then every POLL_S the media playlist and the newest part, with the query the
playlist gave it. The figure is the server's CPU time per request, on vs off (read
from /proc), plus the hook's own cost per call measured in-process.

    .venv/bin/python bench/viewers.py [--viewers 1000] [--seconds 15]
(wrap in `flock /tmp/live-heavy.lock` on shared machines)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

POLL_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the server (child process) ---------------------------------------------------------


async def _serve(mode: str) -> None:
    from aiohttp import web

    from live.hls import HlsRegistry, setup_hls_routes
    from live.hls.stream import HlsStream, Rendition
    from live.hls.window import HlsWindow
    from live.stats.viewers import ViewerTracker

    registry = HlsRegistry()
    window = HlsWindow(target_duration=1, part_target=0.2, window_segments=7)
    window.set_init(b"\0" * 800)
    registry.register(
        HlsStream("pb_bench", [Rendition("source", window, 2_000_000, codecs="avc1.64001f")])
    )
    tracker = ViewerTracker(registry, default_target_duration=1)
    app = web.Application()
    if mode == "on":
        setup_hls_routes(
            app,
            registry,
            on_request=tracker.on_request,
            query_for_multivariant=tracker.query_for_multivariant,
        )
        tracker.start()
    else:
        setup_hls_routes(app, registry)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    part = os.urandom(50_000)  # ~2 Mbit/s in 200 ms parts
    count = 0
    while True:
        if count % 5 == 0:
            window.start_segment()
        window.add_part(part, 0.2, count % 5 == 0)
        count += 1
        await asyncio.sleep(0.2)
        if count % 50 == 0 and mode == "on":
            print(f"viewers {tracker.current_viewers('pb_bench')}", flush=True)


# -- the viewers (load process) ---------------------------------------------------------


async def _viewer(session, base: str, deadline: float, counts: list[int]) -> None:
    await asyncio.sleep(random.uniform(0, POLL_S))
    async with session.get(f"{base}/live/pb_bench/index.m3u8") as response:
        text = await response.text()
    media = next(line for line in text.splitlines() if line and not line.startswith("#"))
    query = media.partition("?")[2]
    suffix = f"?{query}" if query else ""
    while time.monotonic() < deadline:
        async with session.get(f"{base}/live/pb_bench/{media}") as response:
            playlist = await response.text()
        counts[0] += 1
        parts = re.findall(r'URI="(part-\d+\.m4s)[^"]*"', playlist)
        if parts:
            async with session.get(f"{base}/live/pb_bench/source/{parts[-2]}{suffix}") as r:
                await r.read()
            counts[0] += 1
        await asyncio.sleep(POLL_S)


async def _load(base: str, viewers: int, seconds: float) -> int:
    import aiohttp

    counts = [0]
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(
            *(_viewer(session, base, deadline, counts) for _ in range(viewers)),
            return_exceptions=True,
        )
    return counts[0]


# -- measurement ----------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _run(mode: str, viewers: int, seconds: float) -> tuple[float, int]:
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        time.sleep(1)
        before = _cpu_s(server.pid)
        requests = asyncio.run(_load(f"http://127.0.0.1:{port}", viewers, seconds))
        cpu = _cpu_s(server.pid) - before
        return cpu, requests
    finally:
        server.terminate()
        server.wait(10)


def _hook_cost(viewers: int) -> float:
    """Seconds per on_request call with `viewers` players known."""
    from aiohttp.test_utils import make_mocked_request

    from live.stats.viewers import ViewerTracker

    tracker = ViewerTracker()
    requests = []
    for _ in range(viewers):
        mv = make_mocked_request("GET", "/live/pb/index.m3u8", headers={"User-Agent": "x"})
        mv._match_info = {"playback_id": "pb"}  # type: ignore[attr-defined]
        query = tracker.query_for_multivariant(mv)
        request = make_mocked_request(
            "GET", f"/live/pb/source/part-1.m4s?{query}", headers={"User-Agent": "x"}
        )
        request._match_info = {"playback_id": "pb", "rendition": "source"}  # type: ignore[attr-defined]
        requests.append(request)
    calls = 0
    started = time.perf_counter()
    for _ in range(20):
        for request in requests:
            tracker.on_request(request, "pb", "part", 50_000)
            calls += 1
    return (time.perf_counter() - started) / calls


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        asyncio.run(_serve(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    results = {}
    for mode in ("off", "on", "off", "on"):
        cpu, requests = _run(mode, args.viewers, args.seconds)
        results.setdefault(mode, []).append((cpu, requests))
        print(f"accounting {mode:3}: {requests} requests, server CPU {cpu:.2f} s, "
              f"{cpu / requests * 1e6:.0f} us/request")  # fmt: skip
    per_request = {
        mode: sum(c for c, _ in runs) / sum(r for _, r in runs) for mode, runs in results.items()
    }
    overhead = (per_request["on"] - per_request["off"]) / per_request["off"] * 100
    hook = _hook_cost(args.viewers)
    share = hook / per_request["on"] * 100
    print(f"server CPU per request: off {per_request['off'] * 1e6:.0f} us, "
          f"on {per_request['on'] * 1e6:.0f} us -> {overhead:+.1f}% with accounting")  # fmt: skip
    print(f"on_request hook alone: {hook * 1e6:.2f} us/call = {share:.1f}% of a request's CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
