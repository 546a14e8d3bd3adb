"""Plumbing shared by the benchmarks: start `live serve`, talk to its API, read CPU time.

Everything a benchmark starts goes through a `Reaper`, which ends each process by
its PID (never by name) so a benchmark never touches processes it did not start.
Ports are all chosen at runtime: the server binds port 0 and prints what it got.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PORT_LINE = re.compile(r"^\s+(HTTP|RTMP ingest)\b.*\(port (\d+)\)")


class Reaper:
    """Every process a benchmark started; `end_all` stops them by PID."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def popen(self, command: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(command, **kwargs)
        self.started.append(process)
        return process

    def end(self, process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def end_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for process in self.started:
            if process.poll() is None:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self.started.clear()


class LiveServer:
    """`live serve` on loopback with port 0 everywhere and its own data directory."""

    def __init__(
        self,
        reaper: Reaper,
        data_dir: Path,
        env: dict[str, str] | None = None,
        *extra: str,
        api_key: str | None = None,
    ) -> None:
        self.api_key = api_key or "bench_" + secrets.token_hex(12)
        environment = {**os.environ, "LIVE_API_KEY": self.api_key, "PYTHONUNBUFFERED": "1"}
        environment.update(env or {})
        self.output: list[str] = []
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        self.process = reaper.popen(
            [
                str(PYTHON),
                "-m",
                "live.cli",
                "serve",
                "--http",
                "127.0.0.1:0",
                "--rtmp",
                "127.0.0.1:0",
                "--srt",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
            cwd=REPO,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(30) or "HTTP" not in self.ports or "RTMP ingest" not in self.ports:
            raise RuntimeError("live did not start:\n" + "".join(self.output))

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = _PORT_LINE.match(line)
            if match:
                self.ports[match.group(1)] = int(match.group(2))
            if "HTTP" in self.ports and "RTMP ingest" in self.ports:
                self._ready.set()
        self._ready.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['HTTP']}"

    def rtmp_url(self, stream_key: str) -> str:
        return f"rtmp://127.0.0.1:{self.ports['RTMP ingest']}/live/{stream_key}"

    def create_livestream(self, name: str, **fields: object) -> dict:
        """A livestream that ends as soon as its publisher leaves (no reconnect window)."""
        body = json.dumps({"name": name, "reconnect_window_s": 0, **fields}).encode()
        request = urllib.request.Request(
            self.http + "/v1/livestreams",
            data=body,
            method="POST",
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        url = path if path.startswith("http") else self.http + path
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def metric(self, name: str) -> float | None:
        """One unlabelled sample of /metrics, e.g. `live_hls_parts_total`."""
        status, body = self.get("/metrics")
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


def exit_on_sigterm() -> None:
    """Turn SIGTERM (e.g. from `timeout`) into SystemExit so `finally` blocks still
    end the processes a benchmark started."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def free_port() -> int:
    """A loopback port free right now (for servers that cannot bind port 0 and tell us)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """Direct children of pid, read from /proc (no psutil needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent PID; the command name (field 2) may contain spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children(current))
    return tree


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """utime + stime of each live PID, in seconds (/proc/PID/stat fields 14 and 15)."""
    result = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        result[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return result


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
