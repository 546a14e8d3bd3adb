"""schemathesis against the real server: every documented operation, fuzzed; no 5xx
and no answer outside /v1/openapi.json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import API_KEY, LiveProcess

pytestmark = pytest.mark.e2e
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")  # tus bodies, as bytes

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(processes, tmp_path):
    live = LiveProcess(
        processes,
        tmp_path / "data",
        # fuzzing sends thousands of requests: the limit is tested elsewhere
        env={"LIVE_API_RATE_LIMIT_PER_MIN": "1000000", "LIVE_API_RATE_LIMIT_BURST": "100000"},
    )
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [
                str(schemathesis), "run", f"{live.http}/v1/openapi.json",
                "-H", f"X-API-Key: {API_KEY}",
                "--checks", CHECKS,
                # deleting API keys could delete the one the run authenticates with
                "--exclude-path", "/api-keys/{id}",
                "--max-examples", "8", "--max-time", "60", "--workers", "1",
                "--seed", "20261123", "--no-color", "--request-timeout", "10",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        )  # fmt: skip
    finally:
        live.stop()
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "passed" in result.stdout, report
    assert "Internal server error" not in "".join(live.output)
