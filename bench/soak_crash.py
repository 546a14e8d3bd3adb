"""Crash and restart soak, the long version of tests/e2e/test_soak.py's: one ffmpeg
RTMP publisher streams while `live serve` is killed with SIGKILL or SIGTERM (at
random) every 30-90 s and restarted, the publisher with it. At the end every
session must be closed, every asset ready, and every LL-HLS part the server
published must be in the recording, but at most one per SIGKILL (tests/e2e/soak.py
says how parts are matched and frames counted).

    nice -n 10 flock /tmp/live-e2e.lock .venv/bin/python bench/soak_crash.py \\
        [--minutes 10] [--min-interval 30] [--max-interval 90] [--seed 17]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from common import exit_on_sigterm
from harness import Processes
from soak import crash_soak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--min-interval", type=float, default=30)
    parser.add_argument("--max-interval", type=float, default=90)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    exit_on_sigterm()
    processes = Processes()
    work = processes.scratch_dir("bench-soak-crash-")
    try:
        result = crash_soak(
            processes, Path(work) / "data", seconds=args.minutes * 60,
            interval=(args.min_interval, args.max_interval), seed=args.seed,
        )  # fmt: skip
        summary = result.summary()
        print(json.dumps(summary, indent=1))
        failures = [
            f"life {n + 1} ({life.signal}) lost {len(life.missing)} acknowledged part(s)"
            for n, life in enumerate(result.lives)
            if len(life.missing) > (1 if life.signal == "SIGKILL" else 0)
        ]
        for failure in failures:
            print("FAIL:", failure)
        sys.exit(1 if failures else 0)
    finally:
        processes.end_all()


if __name__ == "__main__":
    main()
