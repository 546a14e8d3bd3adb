"""Load soak, the long version of tests/e2e/test_soak.py's: publishers over RTMP,
SRT and WHIP (320x180, 30 fps) and hls.js-like LL-HLS viewers for a while, some
publishers dropped and back (after 3 s, inside their reconnect window) every
round. The server's RSS, threads, open fds and event loop tasks are sampled; parts
are on time when they keep reaching the first viewer of their stream at the pace
they are made. Prints the samples and a JSON summary, and fails when the RSS grew
by more than `--rss-bound-mb` in steady state, when fds or tasks did not come
back near their idle figures once everything stopped, or when the p99 gap
between parts exceeds 1 s.

    nice -n 10 flock /tmp/live-e2e.lock .venv/bin/python bench/soak_load.py \\
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
from soak import load_soak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rtmp", type=int, default=8)
    parser.add_argument("--srt", type=int, default=6)
    parser.add_argument("--whip", type=int, default=6)
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--restart-every", type=float, default=60)
    parser.add_argument("--restart-count", type=int, default=5)
    parser.add_argument("--record-every", type=int, default=4)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--rss-bound-mb", type=float, default=64)
    args = parser.parse_args()
    exit_on_sigterm()
    processes = Processes()
    work = processes.scratch_dir("bench-soak-load-")
    try:
        result = load_soak(
            processes, Path(work) / "data", seconds=args.minutes * 60,
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
            "idle": dataclasses.asdict(result.idle),
            "peak_rss_mb": max(s.rss_mb for s in result.samples),
            "after": dataclasses.asdict(result.after),
            "part_gaps": gaps,
            "viewer_requests": result.viewer_requests,
            "viewer_errors": result.viewer_errors,
        }
        print(json.dumps(summary, indent=1))
        failures = []
        if result.rss_growth_mb() > args.rss_bound_mb:
            failures.append(f"RSS grew {result.rss_growth_mb()} MB")
        if result.after.fds > result.idle.fds + 5 or result.after.tasks > result.idle.tasks + 5:
            failures.append("fds or tasks did not come back")
        if gaps.get("p99_ms", 0) > 1000:
            failures.append(f"p99 gap between parts {gaps['p99_ms']} ms")
        for failure in failures:
            print("FAIL:", failure)
        sys.exit(1 if failures else 0)
    finally:
        processes.end_all()


if __name__ == "__main__":
    main()
