"""The project's Varnish edge (`configs/edge.vcl`) run by a test or a benchmark.

`varnishd -F` runs in the foreground with a work directory of its own (removed at
teardown with the caller's scratch directories) on a free loopback port; the VCL's
node backends are pointed at the origins given, everything else in it is as shipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from harness import Processes

REPO = Path(__file__).resolve().parents[2]
EDGE_VCL = REPO / "configs" / "edge.vcl"
# `.host = "node1"; .port = "8080";` inside a backend block (whatever the spacing).
_BACKEND_ADDRESS = re.compile(r'(\.host\s*=\s*)"[^"]*"(;\s*\.port\s*=\s*)"[^"]*"')


def point_backends(vcl: str, origins: list[tuple[str, int]]) -> str:
    """The VCL with its i-th backend on origins[i % len(origins)]."""
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        host, port = origins[count % len(origins)]
        count += 1
        return f'{match.group(1)}"{host}"{match.group(2)}"{port}"'

    rendered = _BACKEND_ADDRESS.sub(replace, vcl)
    if count == 0:
        raise ValueError("the VCL declares no backend with .host and .port")
    return rendered


class VarnishEdge:
    """varnishd with the project's VCL in front of `origins` (host, port)."""

    def __init__(
        self, processes: Processes, origins: list[tuple[str, int]], params: tuple[str, ...] = ()
    ) -> None:
        """`params` are varnishd run-time parameters, `NAME=VALUE` each (`-p`)."""
        self.workdir = processes.scratch_dir("varnish-")
        vcl = self.workdir / "edge.vcl"
        vcl.write_text(point_backends(EDGE_VCL.read_text(), origins))
        self.name = str(self.workdir / "instance")
        self.process = processes.popen(
            [
                "varnishd",
                "-F",
                "-j", "none",  # run as the caller (no jail users or privileges needed)
                "-n", self.name,
                "-a", "127.0.0.1:0",
                "-T", "127.0.0.1:0",
                "-f", str(vcl),
                "-s", "malloc,64m",
                *(arg for param in params for arg in ("-p", param)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.port = self._wait_listening(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_listening(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read() if self.process.stdout else ""
                raise RuntimeError(f"varnishd exited ({self.process.returncode}):\n{output}")
            result = self._admin("debug.listen_address")
            match = re.search(r"127\.0\.0\.1 (\d+)", result.stdout)
            if result.returncode == 0 and match:
                return int(match.group(1))
            time.sleep(0.2)
        raise RuntimeError("varnishd did not start listening")

    def _admin(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["varnishadm", "-n", self.name, *command],
            capture_output=True,
            text=True,
            timeout=10,
        )

    def counters(self) -> dict[str, int]:
        """varnishstat's counters (MAIN.backend_req, MAIN.cache_hit, ...)."""
        result = subprocess.run(
            ["varnishstat", "-n", self.name, "-1", "-j"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        data = json.loads(result.stdout)
        data = data.get("counters", data)  # varnish >= 6.5 nests them
        return {
            name: entry["value"]
            for name, entry in data.items()
            if isinstance(entry, dict) and "value" in entry
        }
