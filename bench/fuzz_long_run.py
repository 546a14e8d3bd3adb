"""Long fuzzing run: every target of `fuzz/` for a number of executions, one after another.

    .venv/bin/python bench/fuzz_long_run.py --runs 2500000            # per target
    .venv/bin/python bench/fuzz_long_run.py --runs 100000 --only rtmp --json out.json

Each target runs in a process of its own (`python -m fuzz TARGET`) from the committed
seeds plus a scratch corpus that collects what coverage guidance finds, with
libFuzzer's per-input timeout (a hang) and RSS limit (runaway memory) on. Reports,
per target: executions, executions per second, peak RSS, coverage and findings; a
finding's input is kept in the artifact directory (`--artifacts`, default
bench/results/fuzz/) to become a regression test. Exits non-zero on any finding.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuzz import TARGETS, command  # noqa: E402

_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+)\s+ft: (\d+).*?exec/s: (\d+)\s+rss: (\d+)Mb")
_PEAK_RSS = re.compile(r"stat::peak_rss_mb:\s+(\d+)")
_PROGRESS = re.compile(r"^#(\d+)\s", re.MULTILINE)  # the last one, when it stopped early


@dataclass
class TargetResult:
    target: str
    executions: int
    seconds: float
    exec_per_s: float
    peak_rss_mb: int
    coverage: int
    features: int
    findings: list[str]  # libFuzzer's verdict line for each stop on a finding


@dataclass
class _Segment:
    executions: int
    peak_rss_mb: int
    coverage: int
    features: int
    finding: str | None


def _read_log(log: str, returncode: int) -> _Segment:
    done = _DONE.search(log)
    peak = _PEAK_RSS.search(log)
    progress = _PROGRESS.findall(log)
    finding = None
    if returncode != 0 or done is None:
        verdicts = [line for line in log.splitlines() if "ERROR" in line or "Finding" in line]
        finding = verdicts[0] if verdicts else f"exit status {returncode}"
    coverage = re.findall(r"cov: (\d+)\s+ft: (\d+)", log)
    return _Segment(
        executions=int(done.group(1)) if done else int(progress[-1]) if progress else 0,
        peak_rss_mb=int(peak.group(1)) if peak else 0,
        coverage=int(coverage[-1][0]) if coverage else 0,
        features=int(coverage[-1][1]) if coverage else 0,
        finding=finding,
    )


def fuzz_target(
    target: str,
    runs: int,
    artifacts: Path,
    *,
    timeout_s: int,
    rss_limit_mb: int,
    keep_going: bool = False,
) -> TargetResult:
    """Fuzz `target` for `runs` executions; with `keep_going`, start it again (with
    the corpus found so far) after each finding until the executions are done."""
    artifacts.mkdir(parents=True, exist_ok=True)
    executed, peak_rss, findings = 0, 0, []
    segment = _Segment(0, 0, 0, 0, None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        while executed < runs:
            log_path = artifacts / f"{target}-{len(findings)}.log"  # tail it to follow
            argv = command(
                target, runs - executed, Path(scratch), artifacts,
                timeout_s=timeout_s, rss_limit_mb=rss_limit_mb,
            )  # fmt: skip
            with log_path.open("w") as log_file:
                process = subprocess.run(argv, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
            segment = _read_log(log_path.read_text(errors="replace"), process.returncode)
            executed += segment.executions
            peak_rss = max(peak_rss, segment.peak_rss_mb)
            if segment.finding is None:
                break
            findings.append(segment.finding)
            if not keep_going or segment.executions == 0:
                break
    seconds = time.monotonic() - started
    return TargetResult(
        target=target,
        executions=executed,
        seconds=round(seconds, 1),
        exec_per_s=round(executed / seconds) if seconds else 0,
        peak_rss_mb=peak_rss,
        coverage=segment.coverage,
        features=segment.features,
        findings=findings,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=2_500_000, help="executions per target")
    parser.add_argument("--only", choices=TARGETS, action="append")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument("--artifacts", type=Path, default=REPO / "bench" / "results" / "fuzz")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--keep-going", action="store_true", help="start a target again after a finding"
    )
    args = parser.parse_args()
    results = []
    for target in args.only or TARGETS:
        result = fuzz_target(
            target, args.runs, args.artifacts,
            timeout_s=args.timeout, rss_limit_mb=args.rss_limit_mb, keep_going=args.keep_going,
        )  # fmt: skip
        results.append(result)
        print(
            f"{target:7} {result.executions:>10,} execs  {result.seconds:>8.0f} s  "
            f"{result.exec_per_s:>6,}/s  peak RSS {result.peak_rss_mb} MB  "
            f"cov {result.coverage}  findings: {len(result.findings)} {result.findings[:3]}",
            flush=True,
        )
    total = sum(r.executions for r in results)
    print(f"total   {total:>10,} execs on {platform.node()} ({platform.processor() or '?'})")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
