"""Soaks, the long versions of tests/e2e/test_soak.py's (tests/e2e/soak.py has the
code and says what is measured and how).

crash: one ffmpeg RTMP publisher streams while `live serve` is killed with SIGKILL
    or SIGTERM (at random) every 30-90 s and restarted, the publisher with it. At
    the end every session must be closed, every asset ready, and every LL-HLS part
    the server published must be in the recording, but at most one per SIGKILL.
load: publishers over RTMP, SRT and WHIP (320x180, 30 fps) and hls.js-like LL-HLS
    viewers, some publishers dropped and back (after 3 s, inside their reconnect
    window) every round. The server's RSS, threads, open fds and event loop tasks
    are sampled. Fails when the RSS grew by more than `--rss-bound-mb` in steady
    state, when fds or tasks did not come back near their idle figures once
    everything stopped, or when the p99 gap between parts exceeds 1 s.

    nice -n 10 flock /tmp/live-e2e.lock .venv/bin/python bench/soak.py crash \\
        [--minutes 10] [--min-interval 30] [--max-interval 90] [--seed 17]
    nice -n 10 flock /tmp/live-e2e.lock .venv/bin/python bench/soak.py load \\
        [--minutes 10] [--rtmp 8 --srt 6 --whip 6] [--viewers 300] \\
        [--restart-every 60 --restart-count 5] [--rss-bound-mb 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from common import exit_on_sigterm
from harness import Processes
from soak import crash_soak, load_soak


def crash(processes: Processes, data_dir: Path, args: argparse.Namespace) -> list[str]:
    result = crash_soak(
        processes, data_dir, seconds=args.minutes * 60,
        interval=(args.min_interval, args.max_interval), seed=args.seed,
    )  # fmt: skip
    print(json.dumps(result.summary(), indent=1))
    return [
        f"life {n + 1} ({life.signal}) lost {len(life.missing)} acknowledged part(s)"
        for n, life in enumerate(result.lives)
        if len(life.missing) > (1 if life.signal == "SIGKILL" else 0)
    ]


def load(processes: Processes, data_dir: Path, args: argparse.Namespace) -> list[str]:
    result = load_soak(
        processes, data_dir, seconds=args.minutes * 60,
        kinds={"rtmp": args.rtmp, "srt": args.srt, "whip": args.whip},
        viewers=args.viewers, restart_every=args.restart_every,
        restart_count=args.restart_count, record_every=args.record_every,
        sample_every=args.sample_every,
    )  # fmt: skip
    print("samples (s, RSS MB, threads, fds, tasks):")
    for sample in [result.idle, *result.samples, result.after]:
        print(f"  {sample.at:7.1f} {sample.rss_mb:7.1f} {sample.threads:4d} "
              f"{sample.fds:5d} {sample.tasks:5d}")  # fmt: skip
    gaps = result.gap_summary()
    summary = {
        "seconds": result.seconds,
        "publishers": dict(result.publishers),
        "viewers": result.viewers,
        "rounds": result.rounds,
        "publisher_restarts": result.restarted,
        "rss_growth_mb": result.rss_growth_mb(),
        "rss_bound_mb": args.rss_bound_mb,
        "peak_rss_mb": max(s.rss_mb for s in result.samples),
        "idle": dataclasses.asdict(result.idle),
        "after": dataclasses.asdict(result.after),
        "part_gaps": gaps,
        "viewer_requests": result.viewer_requests,
        "viewer_errors": result.error_kinds(),
        "sessions_per_stream": sorted(set(result.sessions)),
    }
    print(json.dumps(summary, indent=1))
    failures = []
    if result.rss_growth_mb() > args.rss_bound_mb:
        failures.append(f"RSS grew {result.rss_growth_mb()} MB")
    if result.after.fds > result.idle.fds + 5 or result.after.tasks > result.idle.tasks + 5:
        failures.append("fds or tasks did not come back")
    if gaps.get("p99_ms", 0) > 1000:
        failures.append(f"p99 gap between parts {gaps['p99_ms']} ms")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser()
    modes = parser.add_subparsers(dest="mode", required=True)
    crash_args = modes.add_parser("crash")
    crash_args.add_argument("--min-interval", type=float, default=30)
    crash_args.add_argument("--max-interval", type=float, default=90)
    crash_args.add_argument("--seed", type=int, default=17)
    load_args = modes.add_parser("load")
    load_args.add_argument("--rtmp", type=int, default=8)
    load_args.add_argument("--srt", type=int, default=6)
    load_args.add_argument("--whip", type=int, default=6)
    load_args.add_argument("--viewers", type=int, default=300)
    load_args.add_argument("--restart-every", type=float, default=60)
    load_args.add_argument("--restart-count", type=int, default=5)
    load_args.add_argument("--record-every", type=int, default=4)
    load_args.add_argument("--sample-every", type=float, default=10)
    load_args.add_argument("--rss-bound-mb", type=float, default=64)
    for mode in (crash_args, load_args):
        mode.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    exit_on_sigterm()
    processes = Processes()
    try:
        data_dir = processes.scratch_dir(f"bench-soak-{args.mode}-") / "data"
        failures = (crash if args.mode == "crash" else load)(processes, data_dir, args)
        for failure in failures:
            print("FAIL:", failure)
        sys.exit(1 if failures else 0)
    finally:
        processes.end_all()


if __name__ == "__main__":
    main()
