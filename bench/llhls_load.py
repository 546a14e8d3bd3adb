"""LL-HLS load: thousands of hls.js-like viewers from a few processes, and what they cost.

Each worker process runs its share of the viewers (`llhls_client.py`: raw HTTP/1.1 on
uvloop, blocking playlist reload + preload-hinted part, delta updates) on its own
event loop. Viewers join evenly over --ramp seconds; after --settle more seconds a
window of --seconds is measured:

- requests/s and errors (any status other than 200, a dropped connection);
- per part, how long after the first viewer (of all processes) each viewer had it
  fully: p50, p95, p99, max over every (part, viewer) pair of the window;
- the tool's own CPU per request (all workers), to show it is not what saturates;
- the origin's CPU per request and its RSS (from /proc, its whole process tree), and
  with --edge the Varnish edge's CPU as well; a --baseline window before the viewers
  come gives what the origin spends without them (ingest), so the report also gives
  the CPU per request net of it.

Against a running server (the origin's PID makes its CPU part of the report):

    bench/llhls_load.py http://127.0.0.1:8080/live/PLAYBACK/index.m3u8 --origin-pid PID

Or let it start everything on loopback: `live serve`, one 720p30 3 Mbps publisher
(`ffmpeg -re -stream_loop -1 -c copy`, the input of `cpu_vs_nginx.py`) and, with
--edge, `varnishd` with `configs/edge.vcl` in front of the origin:

    flock /tmp/live-bench.lock .venv/bin/python bench/llhls_load.py --serve \\
        --viewers 300 --workers 2 --seconds 30
    flock /tmp/live-bench.lock .venv/bin/python bench/llhls_load.py --serve --edge \\
        --viewers 2000 --workers 3 --seconds 30

With --static (and --serve), after that window one viewer's fetches from the origin are
captured for --capture seconds (`llhls_capture.py`), the origin is stopped, and the
same viewers replay them, on the same clock (a static server cannot block), from
Debian's nginx serving the capture as files (`static_origin.py`); the report then
gives nginx's CPU per request and our origin's over it:

    flock /tmp/live-bench.lock .venv/bin/python bench/llhls_load.py --serve --static \\
        --viewers 300 --workers 2 --seconds 20

--json FILE writes the figures as JSON as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from common import cpu_seconds, exit_on_sigterm, percentile, process_tree  # noqa: E402
from llhls_capture import ReplayViewer, Schedule, capture, write_capture  # noqa: E402
from llhls_client import Tally, Target, Viewer, run_viewers  # noqa: E402
from static_origin import StaticOrigin  # noqa: E402

_HLS_REQUESTS = re.compile(r'^live_hls_requests_total\{kind="(\w+)"\} (\S+)', re.M)


# ---------------------------------------------------------------------------- workers


def _worker(target: Target, count: int, timeline: dict[str, float], results,
            viewer: Callable[[Target, Tally], Viewer]) -> None:  # fmt: skip
    """One process's viewers on uvloop; sends back its Tally and its CPU in the window."""
    import uvloop

    async def main() -> tuple[Tally, float]:
        cpu: dict[str, float] = {}

        async def clock() -> None:
            for mark in ("from", "until"):
                await asyncio.sleep(max(0.0, timeline[mark] - time.monotonic()))
                cpu[mark] = time.process_time()

        clock_task = asyncio.ensure_future(clock())
        tally = await run_viewers(
            target, count, start=timeline["start"], ramp=timeline["ramp"],
            until=timeline["until"], window=(timeline["from"], timeline["until"]),
            viewer=viewer,
        )  # fmt: skip
        await clock_task
        return tally, cpu["until"] - cpu["from"]

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            tally, cpu = runner.run(main())
        tally.arrivals = dict(tally.arrivals)  # type: ignore[assignment]
        results.put((tally, cpu))
    except BaseException as error:  # the parent must hear of it, not wait forever
        results.put((repr(error), 0.0))
        raise


def run_load(target: Target, viewers: int, workers: int, *, ramp: float, settle: float,
             seconds: float, baseline: float, watch: dict[str, int],
             metrics_url: str | None,
             viewer: Callable[[Target, Tally], Viewer] = Viewer) -> dict:  # fmt: skip
    """Run the viewers in `workers` processes; measure the processes in `watch` (name ->
    PID, each with its children) for `baseline` seconds without viewers (what ingest
    alone costs), then over the window. Returns the report as a dict."""
    idle = _sample(watch, None)
    time.sleep(baseline)
    idle_cpu = {
        name: (cpu - idle["cpu"][name]) / baseline
        for name, cpu in _sample(watch, None)["cpu"].items()
    } if baseline > 0 else {}  # fmt: skip
    start = time.monotonic() + 1.0
    timeline = {"start": start, "ramp": ramp, "from": start + ramp + settle}
    timeline["until"] = timeline["from"] + seconds
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    shares = [viewers // workers + (1 if n < viewers % workers else 0) for n in range(workers)]
    processes = [
        context.Process(
            target=_worker, args=(target, share, timeline, results, viewer), daemon=True
        )
        for share in shares
        if share
    ]
    for process in processes:
        process.start()
    try:
        time.sleep(max(0.0, timeline["from"] - time.monotonic()))
        before = _sample(watch, metrics_url)
        time.sleep(max(0.0, timeline["until"] - time.monotonic()))
        after = _sample(watch, metrics_url)
        tallies, tool_cpu = [], 0.0
        for _ in processes:
            tally, cpu = results.get(timeout=seconds + 60)
            if isinstance(tally, str):
                raise RuntimeError(f"a worker failed: {tally}")
            tallies.append(tally)
            tool_cpu += cpu
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    return _report(tallies, tool_cpu, before, after, idle_cpu, viewers, len(processes), timeline)


def _sample(watch: dict[str, int], metrics_url: str | None) -> dict:
    sample: dict = {"cpu": {}, "rss_mb": {}}
    for name, pid in watch.items():
        tree = process_tree(pid)
        sample["cpu"][name] = sum(cpu_seconds(tree).values())
        sample["rss_mb"][name] = sum(_rss_kb(p) for p in tree) / 1024
    if metrics_url:
        try:
            with urllib.request.urlopen(metrics_url, timeout=15) as response:
                text = response.read().decode()
        except OSError as error:  # an origin too busy to answer is a finding, not a crash
            print(f"/metrics not read: {error!r}", file=sys.stderr)
        else:
            counts = {kind: float(v) for kind, v in _HLS_REQUESTS.findall(text)}
            sample["origin_requests"] = counts
    return sample


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _report(tallies: list[Tally], tool_cpu: float, before: dict, after: dict,
            idle_cpu: dict[str, float], viewers: int, workers: int,
            timeline: dict[str, float]) -> dict:  # fmt: skip
    window = timeline["until"] - timeline["from"]
    arrivals: defaultdict[str, list[float]] = defaultdict(list)
    errors: defaultdict[str, int] = defaultdict(int)
    samples: list[str] = []
    requests = deltas = 0
    received = 0
    for tally in tallies:
        for name, times in tally.arrivals.items():
            arrivals[name].extend(times)
        for kind, count in tally.errors.items():
            errors[kind] += count
        samples += tally.error_samples
        requests += tally.requests_in_window
        received += tally.bytes_in_window
        deltas += tally.delta_playlists
    # Parts first had inside the window, leaving out its last second (viewers stop at
    # its end, so the newest parts are not everybody's yet).
    delays, parts, fetched = [], 0, 0
    for times in arrivals.values():
        first = min(times)
        if timeline["from"] <= first < timeline["until"] - 1.0:
            parts += 1
            fetched += len(times)
            delays.extend((t - first) * 1000 for t in times)
    report: dict = {
        "viewers": viewers,
        "workers": workers,
        "window_s": round(window, 2),
        "requests": requests,
        "requests_per_s": round(requests / window, 1),
        "received_mbit_per_s": round(received * 8 / window / 1e6, 1),
        "delta_playlists": deltas,
        "errors": dict(errors),
        "error_samples": samples[:10],
        "parts": parts,
        "part_fetches_per_part": round(fetched / parts, 1) if parts else 0,
        "tool_cpu_share": round(tool_cpu / window, 3),
        "tool_us_per_request": round(tool_cpu / requests * 1e6, 1) if requests else None,
    }
    if delays:
        report["delay_ms"] = {
            q: round(percentile(delays, float(q[1:])), 1) for q in ("p50", "p95", "p99")
        } | {"max": round(max(delays), 1)}
    for name in before["cpu"]:
        cpu = after["cpu"][name] - before["cpu"][name]
        report[f"{name}_cpu_share"] = round(cpu / window, 3)
        report[f"{name}_us_per_request"] = round(cpu / requests * 1e6, 1) if requests else None
        report[f"{name}_rss_mb"] = round(after["rss_mb"][name], 1)
        if name in idle_cpu and requests:
            report[f"{name}_idle_cpu_share"] = round(idle_cpu[name], 3)
            net = cpu - idle_cpu[name] * window
            report[f"{name}_net_us_per_request"] = round(net / requests * 1e6, 1)
    if "origin_requests" in before and "origin_requests" in after:
        origin = {
            kind: after["origin_requests"][kind] - before["origin_requests"].get(kind, 0)
            for kind in after["origin_requests"]
        }
        report["origin_requests"] = {kind: int(n) for kind, n in origin.items() if n}
        total = sum(origin.values())
        if total and "origin_cpu_share" in report:
            cpu = after["cpu"]["origin"] - before["cpu"]["origin"]
            report["origin_us_per_origin_request"] = round(cpu / total * 1e6, 1)
    return report


def print_report(report: dict) -> None:
    delay = report.get("delay_ms", {})
    print(
        f"{report['viewers']} viewers in {report['workers']} processes, "
        f"{report['window_s']} s window: {report['requests_per_s']} requests/s, "
        f"{report['received_mbit_per_s']} Mbit/s, {report['delta_playlists']} delta playlists"
    )
    print(f"errors: {report['errors'] or 'none'}")
    for sample in report["error_samples"]:
        print(f"  {sample}")
    print(
        f"part delivery behind the first viewer ({report['parts']} parts, "
        f"{report['part_fetches_per_part']} viewers each): p50 {delay.get('p50')} ms, "
        f"p95 {delay.get('p95')} ms, p99 {delay.get('p99')} ms, max {delay.get('max')} ms"
    )
    print(
        f"load tool: {report['tool_cpu_share']:.1%} of a core, "
        f"{report['tool_us_per_request']} µs CPU per request"
    )
    for name in ("origin", "edge", "nginx"):
        if f"{name}_cpu_share" in report:
            print(
                f"{name}: {report[f'{name}_cpu_share']:.1%} of a core, "
                f"{report[f'{name}_us_per_request']} µs CPU per viewer request, "
                f"RSS {report[f'{name}_rss_mb']} MB"
            )
        if f"{name}_idle_cpu_share" in report:
            print(
                f"  {report[f'{name}_idle_cpu_share']:.1%} of a core without viewers; "
                f"net of that, {report[f'{name}_net_us_per_request']} µs per viewer request"
            )
    if "origin_requests" in report:
        print(
            f"origin answered {report['origin_requests']} "
            f"({report.get('origin_us_per_origin_request')} µs CPU per origin request)"
        )


# ---------------------------------------------------------------------------- --serve


def serve_and_run(args: argparse.Namespace) -> dict:
    """The window against our origin and, with --static, the one against nginx serving
    what a viewer fetched from it (after the origin has stopped), with their ratio."""
    with tempfile.TemporaryDirectory(prefix="live-bench-static-") as scratch:
        capture_root = Path(scratch) / "files" if args.static else None
        report, schedule = _serve_and_measure(args, capture_root)
        if capture_root is not None and schedule is not None:
            report["static"] = static_window(args, Path(scratch), capture_root, schedule)
            report.update(ratios(report, report["static"]))
    return report


def _serve_and_measure(args: argparse.Namespace,
                       capture_root: Path | None) -> tuple[dict, Schedule | None]:  # fmt: skip
    """Start `live serve`, a 3 Mbps publisher and, with --edge, Varnish; then run; then
    with `capture_root`, capture what one viewer fetches into it."""
    from cpu_vs_nginx import make_input
    from harness import LiveProcess, Processes

    source = make_input()
    processes = Processes()
    try:
        data = processes.scratch_dir("bench-llhls-load-")
        # Every simulated viewer comes from 127.0.0.1: the limits meant for one client
        # (or a normal audience) are lifted for the swarm.
        env = {
            "LIVE_HLS_MAX_BLOCKING_PER_ADDRESS": "1000000", "LIVE_MAX_VIEWERS": "1000000",
            "LIVE_MAX_VIEWERS_PER_STREAM": "1000000",
        }  # fmt: skip
        if args.no_viewer_stats:
            env["LIVE_VIEWER_STATS"] = "false"
        live = LiveProcess(processes, data / "data", env=env)
        stream = live.create_livestream(reconnect_window_s=0, record=False)
        log = (data / "publisher.log").open("w")
        processes.popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats", "-re",
             "-stream_loop", "-1", "-i", str(source), "-c", "copy", "-f", "flv",
             live.rtmp_url(stream["stream_key"])],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        log.close()
        live.wait_playable(stream["playback_id"], timeout=30)
        time.sleep(args.fill)  # the window fills up, as it would before a crowd arrives
        multivariant = f"/live/{stream['playback_id']}/index.m3u8"
        watch = {"origin": live.process.pid}
        port = live.ports["HTTP"]
        if args.edge:
            from varnish import VarnishEdge

            origin = ("127.0.0.1", port)
            edge = VarnishEdge(processes, [origin, origin], tuple(args.varnish_param))
            watch["edge"] = edge.process.pid
            port = edge.port
        print(f"origin {live.http}, viewers on port {port}, {os.cpu_count()} CPUs", flush=True)
        target = Target("127.0.0.1", port, multivariant, args.rendition,
                        not args.no_gzip, not args.no_delta)  # fmt: skip
        report = run_load(
            target, args.viewers, args.workers, ramp=args.ramp, settle=args.settle,
            seconds=args.seconds, baseline=args.baseline, watch=watch,
            metrics_url=live.http + "/metrics",
        )  # fmt: skip
        if capture_root is None:
            return report, None
        captured = asyncio.run(capture(target, args.capture))
        return report, write_capture(captured, capture_root)
    finally:
        processes.end_all()


# ---------------------------------------------------------------------------- --static


def static_window(args: argparse.Namespace, prefix: Path, root: Path,
                  schedule: Schedule) -> dict:  # fmt: skip
    """The same number of viewers replaying `schedule` from nginx serving `root`."""
    # Each viewer holds two connections; the rest is headroom for reconnections.
    connections = 2 * args.viewers + 256
    with StaticOrigin(prefix, root, connections=connections, gzip_static=schedule.gzip) as nginx:
        files = sum(1 for path in root.rglob("*") if path.is_file())
        print(
            f"static: nginx on port {nginx.port}, {files} files, a cycle of "
            f"{schedule.period:.1f} s ({len(schedule.steps)} requests)", flush=True,
        )  # fmt: skip
        target = Target("127.0.0.1", nginx.port, "/", gzip=not args.no_gzip)
        report = run_load(
            target, args.viewers, args.workers, ramp=args.ramp, settle=args.settle,
            seconds=args.seconds, baseline=0, watch={"nginx": nginx.pid}, metrics_url=None,
            viewer=partial(ReplayViewer, schedule=schedule),
        )  # fmt: skip
        errors = nginx.error_log()
        if errors:
            report["nginx_error_log"] = errors.splitlines()[-10:]
        return report


def ratios(live: dict, static: dict) -> dict[str, float]:
    """Our origin's (and edge's) CPU per request over nginx's, whole and net of ingest."""
    nginx = static.get("nginx_us_per_request")
    found: dict[str, float] = {}
    for name in ("origin", "edge"):
        for kind in ("", "net_"):
            ours = live.get(f"{name}_{kind}us_per_request")
            if ours is not None and nginx:
                found[f"{name}_{kind}to_nginx"] = round(ours / nginx, 2)
    return found


def print_static(report: dict) -> None:
    static = report["static"]
    print("\nstatic: the same viewers replaying a capture of it from nginx (files on disk)")
    print_report(static)
    for line in static.get("nginx_error_log", []):
        print(f"  nginx: {line}")
    nginx = static.get("nginx_us_per_request")
    for name in ("origin", "edge"):
        if f"{name}_to_nginx" not in report:
            continue
        line = (
            f"{name} / nginx CPU per request: {report[f'{name}_us_per_request']} / {nginx} µs "
            f"= {report[f'{name}_to_nginx']}x"
        )
        if f"{name}_net_to_nginx" in report:
            line += (
                f" (net of ingest: {report[f'{name}_net_us_per_request']} / {nginx} µs "
                f"= {report[f'{name}_net_to_nginx']}x)"
            )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", help="multivariant playlist URL (without --serve)")
    parser.add_argument("--serve", action="store_true", help="start a server and a publisher")
    parser.add_argument("--edge", action="store_true", help="with --serve: through Varnish")
    parser.add_argument(
        "--varnish-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --edge: a varnishd parameter (-p), e.g. rush_exponent=64",
    )
    parser.add_argument("--no-viewer-stats", action="store_true", help="with --serve")
    parser.add_argument(
        "--fill", type=float, default=8.0, help="with --serve: seconds of stream before "
        "viewers come (default 8: the playlist's window)",
    )  # fmt: skip
    parser.add_argument("--origin-pid", type=int, help="without --serve: the server's PID")
    parser.add_argument("--metrics", help="without --serve: the origin's /metrics URL")
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--ramp", type=float, default=5.0, help="viewers join over this")
    parser.add_argument("--settle", type=float, default=3.0, help="after the ramp, unmeasured")
    parser.add_argument("--baseline", type=float, default=5.0,
                        help="seconds measured before any viewer (0: none)")  # fmt: skip
    parser.add_argument("--rendition", type=int, default=0, help="variant index (default 0)")
    parser.add_argument("--no-gzip", action="store_true", help="no Accept-Encoding: gzip")
    parser.add_argument("--no-delta", action="store_true", help="never ask _HLS_skip=YES")
    parser.add_argument(
        "--static", action="store_true", help="with --serve: then the same viewers against "
        "nginx serving a capture of what a viewer fetched, for a ratio",
    )  # fmt: skip
    parser.add_argument("--capture", type=float, default=6.0,
                        help="with --static: seconds captured (default 6)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.serve == bool(args.url):
        parser.error("give a multivariant URL or --serve (one of them)")
    if args.edge and not args.serve:
        parser.error("--edge needs --serve (give the edge's URL otherwise)")
    if args.static and not args.serve:
        parser.error("--static needs --serve")
    exit_on_sigterm()
    if args.serve:
        report = serve_and_run(args)
    else:
        url = urllib.parse.urlsplit(args.url)
        if url.scheme != "http" or not url.hostname:
            parser.error("only http:// URLs")
        path = url.path + (f"?{url.query}" if url.query else "")
        target = Target(url.hostname, url.port or 80, path, args.rendition,
                        not args.no_gzip, not args.no_delta)  # fmt: skip
        watch = {"origin": args.origin_pid} if args.origin_pid else {}
        report = run_load(
            target, args.viewers, args.workers, ramp=args.ramp, settle=args.settle,
            seconds=args.seconds, baseline=args.baseline, watch=watch,
            metrics_url=args.metrics,
        )  # fmt: skip
    print_report(report)
    if "static" in report:
        print_static(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
