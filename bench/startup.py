"""Start-up: how long `live serve` takes from exec to accepting a publisher.

A broadcaster whose server restarts (an upgrade, a crash, a node replaced) reconnects
at once; OBS retries after a few seconds, ffmpeg not at all. The goal is that `live
serve` accepts publishers within 1 s of being started, not counting a first-time
setup (creating the database and its tables).

Method: one first start creates the data directory and is stopped; then, for each
round, `live serve` is started on ports picked here and timed from just before the
exec to

- the first complete RTMP handshake (C0+C1 sent, S0+S1+S2 read back): a publisher
  can go on to `connect` and `publish`;
- the first `200` from `/healthz`: the API, HLS and WHIP answer.

Each probe retries every 5 ms. The server is stopped with SIGTERM between rounds and
the time it takes to exit is printed too (a restart pays both).

    flock /tmp/live-bench.lock .venv/bin/python bench/startup.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, REPO, Reaper, exit_on_sigterm, free_port, percentile

HANDSHAKE_C1 = bytes(1536)
PROBE_INTERVAL_S = 0.005


def rtmp_handshake(port: int) -> bool:
    """True once a server on `port` completes the RTMP handshake's first half."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"\x03" + HANDSHAKE_C1)
            received = 0
            while received < 1 + 1536 + 1536:
                chunk = conn.recv(8192)
                if not chunk:
                    return False
                received += len(chunk)
            return True
    except OSError:
        return False


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(reaper: Reaper, data_dir: Path) -> tuple[subprocess.Popen, int, int, float]:
    http_port, rtmp_port = free_port(), free_port()
    environment = {**os.environ, "LIVE_API_KEY": "bench_startup_key_0123456789"}
    started = time.monotonic()
    process = reaper.popen(
        [
            str(PYTHON),
            "-m",
            "live.cli",
            "serve",
            "--http",
            f"127.0.0.1:{http_port}",
            "--rtmp",
            f"127.0.0.1:{rtmp_port}",
            "--srt",
            f"127.0.0.1:{free_port()}",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        cwd=REPO,
    )
    return process, http_port, rtmp_port, started


def time_until(check, process: subprocess.Popen, started: float, limit_s: float = 30) -> float:
    while not check():
        if process.poll() is not None:
            raise RuntimeError(f"live serve exited with {process.returncode}")
        if time.monotonic() - started > limit_s:
            raise RuntimeError("live serve did not come up")
        time.sleep(PROBE_INTERVAL_S)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    exit_on_sigterm()
    reaper = Reaper()
    with tempfile.TemporaryDirectory(prefix="live-startup-") as scratch:
        data_dir = Path(scratch) / "data"
        try:
            process, http_port, rtmp_port, started = start(reaper, data_dir)
            first = time_until(lambda: healthy(http_port), process, started)
            reaper.end(process)
            print(f"first start (creates the database): healthy after {first * 1000:.0f} ms")
            rtmp_times, http_times, stop_times = [], [], []
            for _ in range(args.rounds):
                process, http_port, rtmp_port, started = start(reaper, data_dir)
                rtmp_times.append(time_until(partial(rtmp_handshake, rtmp_port), process, started))
                http_times.append(time_until(partial(healthy, http_port), process, started))
                stopping = time.monotonic()
                reaper.end(process)
                stop_times.append(time.monotonic() - stopping)
        finally:
            reaper.end_all()
    print(f"{args.rounds} restarts, load average {os.getloadavg()[0]:.2f}")
    for label, values in (
        ("RTMP handshake done", rtmp_times),
        ("/healthz answers 200", http_times),
        ("SIGTERM to exit", stop_times),
    ):
        print(
            f"  {label:22s} p50 {percentile(values, 50) * 1000:6.0f} ms"
            f"   max {max(values) * 1000:6.0f} ms   min {min(values) * 1000:6.0f} ms"
        )


if __name__ == "__main__":
    main()
