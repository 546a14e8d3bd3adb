"""Viewer accounting cost: 1,000 simulated viewers polling one live stream.

Runs servers with a synthetic stream (a 200 ms part every 200 ms) in child processes
side by side on one core, one with viewer accounting off and one with it on, while
the other core plays 1,000 viewers against each: a viewer fetches the multivariant
playlist once (getting its player id, a path segment of the media playlist URI:
`/live/pb_bench/{player id}/source/...`, so every viewer's URLs differ), then every
POLL_S that media playlist and the newest part under the same path. The figure is
the server's CPU time per request, on vs off (read from /proc), plus the hook's own
cost per call measured in-process.

`--server app` (the default) runs the whole server as `live serve` does (uvloop, its
middlewares and metrics), with `viewer_stats` off and on. `--server hls` runs only
the HLS handlers on asyncio, where the accounting's share is largest; there
`--modes off,on,ids,query` adds a server that writes player ids into the URIs
without counting, and one whose viewers all send one shared query (what HTTP query
handling alone costs). With either server, `distinct` adds a server without
accounting whose viewers put a distinct dummy query on every part request (parts
never read their query): what a URL the HTTP stack has not seen costs by itself.

    .venv/bin/python bench/viewers.py [--server app|hls] [--viewers 1000] [--seconds 20]
        [--rounds 3]
(wrap in `flock /tmp/live-heavy.lock` on shared machines)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

POLL_S = 2.0
# Every viewer joins (fetches the multivariant, gets its id) within the first POLL_S;
# the figure is taken after this, in the steady state of 1,000 viewers polling.
WARMUP_S = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the server (child process) ---------------------------------------------------------


async def _serve(mode: str, server_kind: str) -> None:
    """One server: the whole `live` server (`app`, as `live serve` runs it: uvloop,
    its middlewares and metrics, `viewer_stats` on or off) or only the HLS handlers
    (`hls`, on asyncio), with a synthetic stream in its HLS registry."""
    from live.hls import HlsRegistry
    from live.hls.stream import HlsStream, Rendition
    from live.hls.window import HlsWindow

    window = HlsWindow(target_duration=1, part_target=0.2, window_segments=7)
    window.set_init(b"\0" * 800)
    stream = HlsStream("pb_bench", [Rendition("source", window, 2_000_000, codecs="avc1.64001f")])
    if server_kind == "app":
        port, registry, tracker, stop = await _start_app(mode)
    else:
        registry = HlsRegistry()
        port, tracker, stop = await _start_handlers(mode, registry)
    registry.register(stream)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # cleans up
    print(f"port {port}", flush=True)
    part = os.urandom(50_000)  # ~2 Mbit/s in 200 ms parts
    count = 0
    try:
        while True:
            if count % 5 == 0:
                window.start_segment()
            window.add_part(part, 0.2, count % 5 == 0)
            count += 1
            await asyncio.sleep(0.2)
            if count % 50 == 0 and mode == "on":
                print(f"viewers {tracker.current_viewers('pb_bench')}", flush=True)
    finally:
        await stop()


async def _start_app(mode: str):
    import tempfile

    from live.app import LiveServer
    from live.config import load_settings

    data_dir = tempfile.mkdtemp(prefix="live-bench-viewers-")
    overrides = {
        "http": "127.0.0.1:0", "rtmp": "127.0.0.1:0", "srt": "127.0.0.1:0",
        "data_dir": data_dir, "api_key": "bench-key", "log_level": "warning",
        "viewer_stats": mode == "on",
        # the simulated viewers all come from 127.0.0.1
        "hls_max_blocking_per_address": 1_000_000,
    }  # fmt: skip
    server = LiveServer(load_settings(None, overrides, environ={}))
    info = await server.start()

    async def stop() -> None:
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    return info.http_port, server.hls, server.viewers, stop


async def _start_handlers(mode: str, registry):
    from aiohttp import web

    from live.hls import setup_hls_routes
    from live.hls.front import FrontRunner
    from live.stats.viewers import ViewerTracker

    tracker = ViewerTracker(registry, default_target_duration=1)
    app = web.Application()
    if mode == "ids":  # player ids in the URIs, but no counting
        handlers = setup_hls_routes(app, registry, start_player=tracker.start_player)
    elif mode == "on":
        handlers = setup_hls_routes(
            app, registry, on_request=tracker.on_request, start_player=tracker.start_player
        )
        tracker.start()
    else:
        handlers = setup_hls_routes(app, registry)
    runner = FrontRunner(app, service=handlers, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()

    async def stop() -> None:
        await tracker.stop()
        await runner.cleanup()

    return runner.addresses[0][1], tracker, stop


# -- the viewers (load process) ---------------------------------------------------------


async def _viewer(
    session,
    base: str,
    deadline: float,
    counts: list[int],
    extra_query: str,
    distinct_parts: bool = False,
) -> None:
    await asyncio.sleep(random.uniform(0, POLL_S))
    async with session.get(f"{base}/live/pb_bench/index.m3u8{extra_query}") as response:
        text = await response.text()
    media = next(line for line in text.splitlines() if line and not line.startswith("#"))
    media_dir = media.partition("?")[0].rsplit("/", 1)[0]  # [{player id}/]source
    query = media.partition("?")[2]
    suffix = f"?{query}" if query else ""
    while time.monotonic() < deadline:
        async with session.get(f"{base}/live/pb_bench/{media}") as response:
            playlist = await response.text()
        counts[0] += 1
        parts = re.findall(r'URI="(part-\d+\.m4s)[^"]*"', playlist)
        if parts:
            # A dummy query as long as a player id's, never the same twice.
            tail = f"?x=pl_{random.getrandbits(48):012x}" if distinct_parts else suffix
            async with session.get(f"{base}/live/pb_bench/{media_dir}/{parts[-2]}{tail}") as r:
                await r.read()
            counts[0] += 1
        await asyncio.sleep(POLL_S)


async def _load(
    base: str,
    viewers: int,
    seconds: float,
    extra_query: str = "",
    mark: Callable[[int], None] | None = None,
    warmup: float = 0.0,
    distinct_parts: bool = False,
) -> int:
    """Play `viewers` for `warmup` + `seconds`; `mark(requests so far)` at `warmup`."""
    import aiohttp

    counts = [0]
    deadline = time.monotonic() + warmup + seconds

    async def marker() -> None:
        await asyncio.sleep(warmup)
        if mark is not None:
            mark(counts[0])

    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(
            marker(),
            *(
                _viewer(session, base, deadline, counts, extra_query, distinct_parts)
                for _ in range(viewers)
            ),
            return_exceptions=True,
        )
    return counts[0]


# -- measurement ----------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _run_side_by_side(
    modes: tuple[str, ...], viewers: int, seconds: float, server_kind: str
) -> dict:
    """One server per mode, all at once on one core, each with its own `viewers`
    loaded at the same time from the other core: whatever else the machine does
    weighs on every mode alike, so their ratio is steadier than runs taken in turn.

    Returns {mode: ((server CPU seconds, requests) after the warm-up, the same for
    the whole run)}.
    """
    server_cpu, load_cpu = _cores()
    pin = ["taskset", "-c", str(server_cpu)]
    servers = {
        mode: subprocess.Popen(
            [*pin, sys.executable, __file__, "serve", mode, server_kind],
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode in modes
    }
    affinity = os.sched_getaffinity(0)
    try:
        ports = {}
        for mode, server in servers.items():
            assert server.stdout is not None
            ports[mode] = int(server.stdout.readline().split()[1])
        os.sched_setaffinity(0, {load_cpu})
        time.sleep(1)
        start = {mode: _cpu_s(server.pid) for mode, server in servers.items()}
        warm: dict[str, tuple[float, int]] = {}

        def marker(mode: str) -> Callable[[int], None]:
            def mark(requests: int) -> None:
                warm[mode] = (_cpu_s(servers[mode].pid), requests)

            return mark

        async def load_all() -> list[int]:
            # "query": accounting off, but every viewer sends one shared query of a
            # player id's length: what HTTP query handling alone costs.
            return await asyncio.gather(
                *(
                    _load(
                        f"http://127.0.0.1:{ports[mode]}",
                        viewers,
                        seconds,
                        "?token=sharedshared" if mode == "query" else "",
                        marker(mode),
                        WARMUP_S,
                        distinct_parts=mode == "distinct",
                    )
                    for mode in modes
                )
            )

        requests = asyncio.run(load_all())
        results = {}
        for mode, count in zip(modes, requests, strict=True):
            end = _cpu_s(servers[mode].pid)
            steady = (end - warm[mode][0], count - warm[mode][1])
            results[mode] = (steady, (end - start[mode], count))
        return results
    finally:
        os.sched_setaffinity(0, affinity)
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.wait(10)


def _cores() -> tuple[int, int]:
    cores = sorted(os.sched_getaffinity(0))
    return cores[0], cores[-1]


def _hook_cost(viewers: int) -> float:
    """Seconds per on_request call with `viewers` players known."""
    from aiohttp.test_utils import make_mocked_request

    from live.hls.paths import parse_live_target
    from live.stats.viewers import ViewerTracker

    tracker = ViewerTracker()
    requests = []
    for _ in range(viewers):
        mv = make_mocked_request("GET", "/live/pb/index.m3u8", headers={"User-Agent": "x"})
        player = tracker.start_player(mv, "pb")
        path = f"/live/pb/{player}/source/part-1.m4s"
        request = make_mocked_request("GET", path, headers={"User-Agent": "x"})
        requests.append((request, parse_live_target(path)))
    calls = 0
    started = time.perf_counter()
    for _ in range(20):
        for request, target in requests:
            tracker.on_request(request, target, 50_000)
            calls += 1
    return (time.perf_counter() - started) / calls


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "serve":
        mode, server_kind = sys.argv[2], sys.argv[3]
        if server_kind == "app":  # as `live serve` runs
            import uvloop

            run = uvloop.run
        else:
            run = asyncio.run
        with contextlib.suppress(asyncio.CancelledError):
            run(_serve(mode, server_kind))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side runs")
    parser.add_argument(
        "--modes",
        default="off,on",
        help="servers side by side: off, on, and optionally ids (player ids in the URIs, "
        "no counting), query (off, with one shared query on every request) and distinct "
        "(off, a distinct dummy query on every part request)",
    )
    parser.add_argument(
        "--server",
        choices=("app", "hls"),
        default="app",
        help="app: the whole server as `live serve` runs it; hls: the HLS handlers alone",
    )
    parser.add_argument(
        "--layout",
        choices=("side-by-side", "alone"),
        default="side-by-side",
        help="side-by-side: all servers at once on one core; alone: one at a time on "
        "that core, in alternating order each round",
    )
    args = parser.parse_args()
    modes = tuple(args.modes.split(","))
    allowed = {"off", "on", "query", "distinct"} | ({"ids"} if args.server == "hls" else set())
    if not {"off", "on"} <= set(modes) <= allowed:
        extra = " and ".join(sorted(allowed - {"off", "on"}))
        parser.error(f"--modes: off and on, optionally {extra}")
    totals: dict[str, list[float]] = {mode: [0.0, 0] for mode in modes}
    whole: dict[str, list[float]] = {mode: [0.0, 0] for mode in modes}
    for round_number in range(1, args.rounds + 1):
        if args.layout == "alone":
            # One server at a time, in alternating order (off on, on off, ...).
            order = modes if round_number % 2 else modes[::-1]
            results = {}
            for mode in order:
                results.update(_run_side_by_side((mode,), args.viewers, args.seconds, args.server))
            results = {mode: results[mode] for mode in modes}
        else:
            results = _run_side_by_side(modes, args.viewers, args.seconds, args.server)
        figures = []
        for mode, ((cpu, requests), (all_cpu, all_requests)) in results.items():
            totals[mode][0] += cpu
            totals[mode][1] += requests
            whole[mode][0] += all_cpu
            whole[mode][1] += all_requests
            figures.append(f"{mode} {requests} requests {cpu / requests * 1e6:.0f} us/request")
        print(f"round {round_number}: " + "; ".join(figures), flush=True)
    joined = {mode: cpu / requests for mode, (cpu, requests) in whole.items()}
    print(f"whole runs, with every viewer joining: off {joined['off'] * 1e6:.0f} us, "
          f"on {joined['on'] * 1e6:.0f} us -> "
          f"{(joined['on'] - joined['off']) / joined['off'] * 100:+.1f}%")  # fmt: skip
    per_request = {mode: cpu / requests for mode, (cpu, requests) in totals.items()}
    overhead = (per_request["on"] - per_request["off"]) / per_request["off"] * 100
    hook = _hook_cost(args.viewers)
    share = hook / per_request["on"] * 100
    print(f"steady state, server CPU per request: off {per_request['off'] * 1e6:.0f} us, "
          f"on {per_request['on'] * 1e6:.0f} us -> {overhead:+.1f}% with accounting")  # fmt: skip
    for mode, label in (
        ("ids", "player ids in the URIs, no counting"),
        ("query", "no accounting, one shared query on every request"),
        ("distinct", "no accounting, a distinct URL on every part request"),
    ):
        if mode in per_request:
            extra = (per_request[mode] - per_request["off"]) / per_request["off"] * 100
            print(f"{label}: {per_request[mode] * 1e6:.0f} us ({extra:+.1f}%)")
    print(f"on_request hook alone: {hook * 1e6:.2f} us/call = {share:.1f}% of a request's CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
