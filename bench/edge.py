"""The Varnish edge: what 200 LL-HLS viewers cost the origin through it, and what the
extra hop costs a viewer.

One `live serve` (viewer statistics off, as behind an edge) receives a 360p30 test
pattern from the ffmpeg CLI over RTMP; `configs/edge.vcl` runs in a real `varnishd`
in front of it. Viewers are the lean hls.js-like clients of the edge tests (blocking
playlist reload for the next part, then the part), all in this process. Four windows
of --window seconds, one after the other:

1. no viewers: what ingest and packaging alone cost the origin;
2. one viewer straight at the origin;
3. one viewer at the origin and one through the edge, side by side: per part, how
   much later the edge viewer has it (the extra hop, edge idle);
4. --viewers through the edge, plus the direct viewer as the reference: origin CPU,
   origin requests per part made, how long after the first edge viewer the others
   had each part, and how much later than the direct viewer the first of them had it.

CPU is read from /proc (utime + stime) for the server, varnishd (manager and cache
process) and this process (the clients), as a share of one core.

    flock /tmp/live-e2e.lock .venv/bin/python bench/edge.py [--viewers 200] [--window 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from common import cpu_seconds, exit_on_sigterm, percentile, process_tree  # noqa: E402
from harness import LiveProcess, Processes, ffmpeg_publish  # noqa: E402
from llhls_viewers import SwarmResult, origin_counts, watch  # noqa: E402
from varnish import VarnishEdge  # noqa: E402


@dataclass
class Window:
    name: str
    seconds: float
    cpu: dict[str, float]  # share of one core: origin, edge, clients
    origin_requests: dict[str, float]  # by kind, during the window
    parts_made: float


class Bench:
    def __init__(self, live: LiveProcess, edge: VarnishEdge, playlist_path: str) -> None:
        self.live, self.edge, self.playlist_path = live, edge, playlist_path

    def _origin_counts(self) -> tuple[dict[str, float], float]:
        counts = origin_counts(self.live.get("/metrics")[1].decode())
        return counts, counts.pop("parts_made")

    def _cpu(self) -> dict[str, float]:
        times = os.times()
        return {
            "origin": sum(cpu_seconds(process_tree(self.live.process.pid)).values()),
            "edge": sum(cpu_seconds(process_tree(self.edge.process.pid)).values()),
            "clients": times.user + times.system,
        }

    async def window(
        self, name: str, seconds: float, *groups: tuple[str, int]
    ) -> tuple[Window, list[SwarmResult]]:
        """Run `groups` of (where: "origin" | "edge", how many viewers) for `seconds`."""
        ports = {"origin": self.live.ports["HTTP"], "edge": self.edge.port}
        kinds_before, parts_before = self._origin_counts()
        cpu_before, started = self._cpu(), time.monotonic()
        results = await asyncio.gather(
            asyncio.sleep(seconds),
            *(
                watch("127.0.0.1", ports[where], self.playlist_path, viewers=count,
                      seconds=seconds - 1.0)
                for where, count in groups
            ),
        )  # fmt: skip
        elapsed = time.monotonic() - started
        cpu_after = self._cpu()
        kinds_after, parts_after = self._origin_counts()
        return Window(
            name,
            elapsed,
            {key: (cpu_after[key] - cpu_before[key]) / elapsed for key in cpu_after},
            {kind: kinds_after[kind] - kinds_before.get(kind, 0) for kind in kinds_after},
            parts_after - parts_before,
        ), list(results[1:])


def behind(later: SwarmResult, reference: SwarmResult) -> list[float]:
    """Per part both had: how much later the first viewer of `later` had it (ms)."""
    delays = []
    for index, times in later.arrivals.items():
        if index in reference.arrivals and min(times) >= later.measure_from:
            delays.append((min(times) - reference.arrivals[index][0]) * 1000)
    return delays


def describe(delays: list[float]) -> str:
    if not delays:
        return "n/a"
    return (
        f"p50 {percentile(delays, 50):.1f} ms, p99 {percentile(delays, 99):.1f} ms, "
        f"max {max(delays):.1f} ms ({len(delays)} parts)"
    )


def report(windows: list[Window], probe: SwarmResult, crowd: SwarmResult, direct: SwarmResult,
           idle_edge: list[float], viewers: int) -> None:  # fmt: skip
    print(f"\n{'window':<34} {'origin':>7} {'varnish':>8} {'clients':>8}   origin requests")
    for w in windows:
        per_part = ", ".join(
            f"{kind} {count:.0f} ({count / w.parts_made:.2f}/part)"
            for kind, count in sorted(w.origin_requests.items())
            if count and w.parts_made
        )
        print(
            f"{w.name:<34} {w.cpu['origin']:>6.1%} {w.cpu['edge']:>8.1%} "
            f"{w.cpu['clients']:>8.1%}   {per_part or '-'} ; {w.parts_made:.0f} parts made"
        )
    print(f"\nextra latency of a part through the idle edge vs direct: {describe(idle_edge)}")
    print(
        f"with {viewers} viewers on the edge, its first viewer behind the direct one: "
        f"{describe(behind(crowd, direct))}"
    )
    spread = crowd.summary()
    print(
        f"{viewers} edge viewers behind the first of them: p50 {spread.get('p50_ms', 0):.1f} ms, "
        f"p99 {spread.get('p99_ms', 0):.1f} ms, max {spread.get('max_ms', 0):.1f} ms "
        f"({spread['parts']} parts that >= 90 % of viewers had); "
        f"errors: {len(crowd.errors) + len(probe.errors) + len(direct.errors)}"
    )


async def run(bench: Bench, viewers: int, seconds: float) -> None:
    windows = []
    window, _ = await bench.window("no viewers", seconds)
    windows.append(window)
    window, _ = await bench.window("1 viewer direct", seconds, ("origin", 1))
    windows.append(window)
    window, (direct_idle, probe) = await bench.window(
        "1 direct + 1 through the edge", seconds, ("origin", 1), ("edge", 1)
    )
    windows.append(window)
    idle_edge = behind(probe, direct_idle)
    window, (direct, crowd) = await bench.window(
        f"1 direct + {viewers} through the edge", seconds, ("origin", 1), ("edge", viewers)
    )
    windows.append(window)
    report(windows, probe, crowd, direct, idle_edge, viewers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--window", type=float, default=6.0, help="seconds per window")
    args = parser.parse_args()
    exit_on_sigterm()
    processes = Processes()
    try:
        data = processes.scratch_dir("bench-edge-")
        # Every simulated viewer comes from 127.0.0.1: lift the per-address limit on
        # waiting blocking requests, meant for one client, not a swarm.
        live = LiveProcess(processes, data / "data", env={
            "LIVE_VIEWER_STATS": "false", "LIVE_HLS_MAX_BLOCKING_PER_ADDRESS": "100000",
        })  # fmt: skip
        stream = live.create_livestream(reconnect_window_s=0)
        ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=4 * args.window + 60)
        media_url = live.wait_playable(stream["playback_id"])
        origin = ("127.0.0.1", live.ports["HTTP"])
        edge = VarnishEdge(processes, [origin, origin])
        print(f"origin {live.http}, edge {edge.url}, {os.cpu_count()} CPUs")
        time.sleep(2)  # the window fills up
        bench = Bench(live, edge, urllib.parse.urlsplit(media_url).path)
        try:
            import uvloop
        except ImportError:
            asyncio.run(run(bench, args.viewers, args.window))
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(run(bench, args.viewers, args.window))
    finally:
        processes.end_all()


if __name__ == "__main__":
    main()
