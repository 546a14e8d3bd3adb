"""A hundred streams at once: every LL-HLS part of every stream timed as a viewer sees it.

The goal: N publishers (`ffmpeg -re -stream_loop -1 -c copy` of the 720p30 3.2 Mbps
input of `cpu_vs_nginx.py`, each its own livestream) remuxed to LL-HLS by one `live
serve` with default settings (200 ms parts, 1 s segments), recording on, on the same
two cores as the publishers; every part published within its target + 100 ms, and no
input dropped.

Each stream gets one watcher (all in `--workers` forked processes on uvloop, on the raw
HTTP/1.1 connection of `llhls_client.py`) doing what a low-latency player does for its
playlist: a blocking reload for the next part (`_HLS_msn`/`_HLS_part`, `_HLS_skip=YES`
once offered), over and over. For each part it had not seen it keeps when the playlist
announcing it arrived (CLOCK_MONOTONIC, stamped when the last byte is read) and its
EXT-X-PART DURATION; `part_lateness.py` turns that into each part's lateness against
the publisher's real-time pace (from the stream's best part) and whether it was
announced within target + 100 ms of when its first frame was sent. The first
`--ramp` seconds after the watchers join and the last second are left out.

Also reported: parts seen against expected, skipped parts, watcher errors, ffmpeg
processes that exited, /metrics counters (ingest bytes, parts, refusals, limits), the
server's warnings, the CPU of the server's process tree, of the publishers and of the
watchers (from /proc), load average and the server's RSS.

    flock /tmp/live-bench.lock .venv/bin/python bench/many_streams.py \
        --streams 10 --seconds 20
    flock /tmp/live-bench.lock .venv/bin/python bench/many_streams.py \
        --streams 100 --seconds 60 --record
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import LiveServer, Reaper, exit_on_sigterm, process_tree  # noqa: E402
from cpu_vs_nginx import INPUT, make_input, start_publishers, total_cpu  # noqa: E402
from llhls_client import (  # noqa: E402
    ConnectionLost,
    HttpConnection,
    ProtocolError,
    parse_media_playlist,
    resolve,
    variant_uris,
    with_directives,
)
from memory import rss_mb  # noqa: E402
from part_lateness import Part, PartLog, lateness, summarize  # noqa: E402

PART_TARGET = 0.2
ALLOWANCE = 0.1
INPUT_SECONDS = 20.0  # the length of make_input()'s file
# All watchers come from 127.0.0.1, and the setup creates N livestreams in a burst:
# the limits meant for one client are lifted (none of them is on the media path).
SWARM_ENV = {
    "LIVE_HLS_MAX_BLOCKING_PER_ADDRESS": "1000000",
    "LIVE_API_RATE_LIMIT_PER_MIN": "0",
}
_SAMPLE = re.compile(r"^(live_[a-z_]+(?:\{[^}]*\})?) (\S+)$", re.M)


# ---------------------------------------------------------------------------- watchers


async def watch(
    host: str, port: int, media_path: str, until: float, log: PartLog, errors: Counter[str]
) -> None:
    """One stream's watcher: blocking reloads for the next part until `until`."""
    connection = HttpConnection(host, port)
    path = media_path
    try:
        while time.monotonic() < until:
            try:
                response = await asyncio.wait_for(connection.get(path), 10.0)
            except (OSError, ConnectionLost, ProtocolError, TimeoutError) as error:
                errors[type(error).__name__] += 1
                connection.close()
                await asyncio.sleep(PART_TARGET)
                continue
            if response.status != 200:
                errors[f"status {response.status}"] += 1
                await asyncio.sleep(PART_TARGET)
                continue
            text = response.text()
            log.add_playlist(text, response.finished_at)
            playlist = parse_media_playlist(text)
            if playlist.ended:
                errors["playlist ended"] += 1
                return
            msn, part = playlist.next_part
            path = with_directives(media_path, msn, part, skip=playlist.can_skip)
    finally:
        connection.close()


def _watch_worker(host: str, port: int, paths: dict[int, str], until: float, results) -> None:
    """A forked process watching `paths` (stream number -> media playlist path)."""
    import uvloop

    async def main() -> dict[int, tuple[list[tuple], int, dict[str, int]]]:
        logs = {number: PartLog() for number in paths}
        errors: dict[int, Counter[str]] = {number: Counter() for number in paths}
        tasks = [
            asyncio.ensure_future(watch(host, port, path, until, logs[n], errors[n]))
            for n, path in paths.items()
        ]
        await asyncio.wait(tasks, timeout=max(0.0, until - time.monotonic()) + 3.0)
        for task in tasks:
            task.cancel()
        for number, result in zip(paths, await asyncio.gather(*tasks, return_exceptions=True),
                                  strict=True):  # fmt: skip
            if isinstance(result, Exception):
                errors[number][f"crashed: {result!r}"] += 1
        return {
            n: ([(p.arrival, p.start, p.duration, p.run) for p in logs[n].parts],
                logs[n].skips, dict(errors[n]))
            for n in paths
        }  # fmt: skip

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results.put(runner.run(main()))
    except BaseException as error:  # the parent must hear of it, not wait forever
        results.put(repr(error))
        raise


# ---------------------------------------------------------------------------- set-up


def wait_all_live(server: LiveServer, playback_ids: list[str], publishers, timeout: float
                  ) -> list[str]:  # fmt: skip
    """Each stream's media playlist path, once every one lists a part."""
    found: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(playback_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(found)}/{len(playback_ids)} streams went live")
        exited = sum(1 for p in publishers if p.poll() is not None)
        if exited:
            raise RuntimeError(f"{exited} publisher(s) exited before going live")
        for number, playback in enumerate(playback_ids):
            if number in found:
                continue
            multivariant = f"/live/{playback}/index.m3u8"
            status, body = server.get(multivariant)
            uris = variant_uris(body.decode(errors="replace")) if status == 200 else []
            if not uris:
                continue
            media = resolve(multivariant, uris[0])
            status, body = server.get(media)
            if status == 200 and b"#EXT-X-PART:" in body:
                found[number] = media
        time.sleep(0.5)
    return [found[n] for n in range(len(playback_ids))]


def metrics(server: LiveServer) -> dict[str, float]:
    """Every `live_*` sample of /metrics (empty if the server did not answer)."""
    status, body = server.get("/metrics", timeout=15)
    if status != 200:
        return {}
    return {name: float(value) for name, value in _SAMPLE.findall(body.decode())}


def sample(server: LiveServer, publishers: list[int], watchers: list[int]) -> dict:
    server_tree = process_tree(server.pid)
    return {
        "time": time.monotonic(),
        "server_cpu": total_cpu(server_tree),
        "publishers_cpu": total_cpu(publishers),
        "watchers_cpu": total_cpu(watchers),
        "load": os.getloadavg(),
        "server_rss_mb": rss_mb(server.pid),
        "metrics": metrics(server),
    }


# ---------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict:
    make_input()
    count = args.streams
    reaper = Reaper()
    temp = Path(tempfile.mkdtemp(prefix="live-bench-many-"))
    workers: list[multiprocessing.Process] = []
    try:
        (temp / "data").mkdir()
        server = LiveServer(reaper, temp / "data", SWARM_ENV)
        streams = [server.create_livestream(f"many-{n}", record=args.record) for n in range(count)]
        started = time.monotonic()
        publishers = start_publishers(
            reaper, [server.rtmp_url(s["stream_key"]) for s in streams], temp
        )
        paths = wait_all_live(server, [s["playback_id"] for s in streams], publishers, 120)
        all_live_s = time.monotonic() - started
        print(f"{count} streams live {all_live_s:.1f} s after the publishers started",
              flush=True)  # fmt: skip

        begin = time.monotonic() + 0.5
        window = (begin + args.ramp, begin + args.ramp + args.seconds)
        until = window[1] + 1.0  # the last second is watched but left out
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        for worker in range(args.workers):
            share = {n: paths[n] for n in range(worker, count, args.workers)}
            process = context.Process(
                target=_watch_worker, daemon=True,
                args=("127.0.0.1", server.ports["HTTP"], share, until, results),
            )  # fmt: skip
            process.start()
            workers.append(process)
        publisher_pids = [p.pid for p in publishers]
        watcher_pids = [w.pid for w in workers if w.pid is not None]
        time.sleep(max(0.0, window[0] - time.monotonic()))
        before = sample(server, publisher_pids, watcher_pids)
        time.sleep(max(0.0, window[1] - time.monotonic()))
        after = sample(server, publisher_pids, watcher_pids)
        seen: dict[int, tuple[list[tuple], int, dict[str, int]]] = {}
        for _ in workers:
            got = results.get(timeout=until - time.monotonic() + 60)
            if isinstance(got, str):
                raise RuntimeError(f"a watcher process failed: {got}")
            seen.update(got)
        exited = {n: p.returncode for n, p in enumerate(publishers) if p.poll() is not None}
        exited_log = (temp / f"publisher-{min(exited)}.log").read_text()[-300:] if exited else ""
        warnings = [line.strip() for line in server.output
                    if " WARNING " in line or " ERROR " in line]  # fmt: skip
        return report(args, window, seen, before, after, exited, exited_log, warnings,
                      all_live_s)  # fmt: skip
    finally:
        for process in workers:
            if process.is_alive():
                process.kill()
            process.join(5)
        reaper.end_all()
        shutil.rmtree(temp, ignore_errors=True)


def report(args: argparse.Namespace, window: tuple[float, float], seen: dict, before: dict,
           after: dict, exited: dict[int, int | None], exited_log: str, warnings: list[str],
           all_live_s: float) -> dict:  # fmt: skip
    count = args.streams
    elapsed = after["time"] - before["time"]
    timed, media_rates, errors, skips = [], [], Counter(), 0
    for number, (parts, stream_skips, stream_errors) in sorted(seen.items()):
        kept = [Part(*p) for p in parts if window[0] <= p[0] < window[1]]
        timed += lateness(number, kept, target=PART_TARGET, allowance=ALLOWANCE)
        media_rates.append(sum(p.duration for p in kept) / (window[1] - window[0]))
        skips += stream_skips
        errors.update(stream_errors)
    summary = summarize(timed, window[0])
    expected = round(count * (window[1] - window[0]) / PART_TARGET)
    before_m, after_m = before["metrics"], after["metrics"]
    counters = {
        name: after_m[name] - before_m.get(name, 0.0)
        for name in after_m
        if name.endswith("_total") or "_total{" in name
    }
    refusals = {name: value for name, value in after_m.items()
                if ("refused" in name or "limit_refusals" in name or "throttled" in name)
                and value}  # fmt: skip
    media_rates.sort()
    cpu = {key: after[key] - before[key] for key in ("server_cpu", "publishers_cpu",
                                                     "watchers_cpu")}  # fmt: skip
    return {
        "streams": count,
        "record": args.record,
        "window_s": round(elapsed, 2),
        "window_monotonic": [round(window[0], 3), round(window[1], 3)],
        "all_live_s": round(all_live_s, 1),
        "parts_seen": summary.parts,
        "parts_expected": expected,
        "media_rate_min": round(media_rates[0], 4) if media_rates else None,
        "media_rate_median": round(media_rates[len(media_rates) // 2], 4) if media_rates else None,
        "lateness_ms": {
            "p50": round(summary.p50 * 1000, 1),
            "p99": round(summary.p99 * 1000, 1),
            "max": round(summary.max * 1000, 1),
        },
        "late_parts": summary.late,
        "late_share": round(summary.late / summary.parts, 5) if summary.parts else None,
        "streams_with_late_parts": summary.streams_with_late,
        "worst_stream": {
            "stream": summary.worst_stream,
            "late": summary.worst_late,
            "max_ms": round(summary.worst_max * 1000, 1),
        },
        "late_by_second": summary.late_by_second,
        "skips": skips,
        "watcher_errors": dict(errors),
        "publishers_exited": len(exited),
        "publisher_exit_log": exited_log,
        "live_publishers_at_end": after_m.get('live_publishers{protocol="rtmp"}'),
        "ingest_kbps_per_stream": round(
            counters.get("live_ingest_bytes_total", 0) * 8 / 1000 / elapsed / count, 1
        ),
        "input_kbps_with_flv_overhead": round(INPUT.stat().st_size * 8 / 1000 / INPUT_SECONDS, 1),
        "parts_produced_in_window": counters.get("live_hls_parts_total"),
        "refusals": refusals,
        "warnings": len(warnings),
        "recording_gaps": sum(1 for w in warnings if "recording skips" in w),
        "warning_samples": sorted({re.sub(r"\d+", "N", w) for w in warnings})[:5],
        "server_cpu_share": round(cpu["server_cpu"] / elapsed, 3),
        "server_cpu_per_stream_s": round(cpu["server_cpu"] / elapsed / count, 5),
        "publishers_cpu_share": round(cpu["publishers_cpu"] / elapsed, 3),
        "publishers_cpu_per_stream_s": round(cpu["publishers_cpu"] / elapsed / count, 5),
        "watchers_cpu_share": round(cpu["watchers_cpu"] / elapsed, 3),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in before["load"]],
        "load_after": [round(x, 2) for x in after["load"]],
        "server_rss_mb": round(after["server_rss_mb"], 1),
    }


def verdict(result: dict) -> str:
    problems = []
    if result["late_parts"]:
        problems.append(f"{result['late_parts']} parts over target + 100 ms")
    if result["skips"] or result["parts_seen"] < result["parts_expected"] * 0.99:
        problems.append("parts missing")
    if result["publishers_exited"] or result["refusals"]:
        problems.append("publishers lost or refused")
    if result["watcher_errors"]:
        problems.append("watcher errors")
    if result["recording_gaps"]:
        problems.append("recording dropped parts")
    return "MET" if not problems else "NOT met: " + "; ".join(problems)


def print_report(result: dict) -> None:
    late = result["lateness_ms"]
    worst = result["worst_stream"]
    print(
        f"{result['streams']} streams, recording {'on' if result['record'] else 'off'}, "
        f"{result['window_s']} s window, {result['cpus']} CPUs"
    )
    print(
        f"parts seen {result['parts_seen']} / expected {result['parts_expected']}; skipped "
        f"{result['skips']}; media time per wall second min {result['media_rate_min']}, "
        f"median {result['media_rate_median']}"
    )
    print(
        f"lateness per part (from each stream's best part): p50 {late['p50']} ms, p99 "
        f"{late['p99']} ms, max {late['max']} ms"
    )
    print(
        f"over target + 100 ms: {result['late_parts']} parts ({result['late_share'] or 0:.3%}) "
        f"in {result['streams_with_late_parts']} streams; worst stream #{worst['stream']}: "
        f"{worst['late']} late, max {worst['max_ms']} ms"
    )
    if result["late_by_second"]:
        busiest = sorted(result["late_by_second"].items(), key=lambda i: -i[1])[:8]
        print(
            "  late parts by second of the window (busiest): "
            + ", ".join(f"{s} s: {n}" for s, n in busiest)
        )
    print(
        f"watcher errors: {result['watcher_errors'] or 'none'}; publishers exited: "
        f"{result['publishers_exited']}; live_publishers at end: "
        f"{result['live_publishers_at_end']}"
    )
    if result["publisher_exit_log"]:
        print(f"  first exited publisher said: {result['publisher_exit_log']!r}")
    print(
        f"ingest {result['ingest_kbps_per_stream']} kbit/s per stream (input "
        f"{result['input_kbps_with_flv_overhead']} with FLV overhead); parts produced in "
        f"the window {result['parts_produced_in_window']}; refusals "
        f"{result['refusals'] or 'none'}; {result['warnings']} warning/error log lines"
    )
    for line in result["warning_samples"]:
        print(f"  {line[:200]}")
    print(
        f"CPU (share of one core): server {result['server_cpu_share']:.1%} "
        f"({result['server_cpu_per_stream_s']:.4f} s per stream-second), publishers "
        f"{result['publishers_cpu_share']:.1%} ({result['publishers_cpu_per_stream_s']:.4f}"
        f"), watchers {result['watchers_cpu_share']:.1%}"
    )
    print(
        f"load average before {result['load_before']}, after {result['load_after']}; "
        f"server RSS {result['server_rss_mb']} MB"
    )
    print(f"goal (every part within target + 100 ms, no input dropped): {verdict(result)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--ramp", type=float, default=5.0,
                        help="seconds after the watchers join, left out")  # fmt: skip
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True,
                        help="livestreams with recording on (default) or off")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="watcher processes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    exit_on_sigterm()
    result = run(args)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
