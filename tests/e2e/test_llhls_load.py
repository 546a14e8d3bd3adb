"""The LL-HLS load tool (`bench/llhls_load.py`) against a real server and publisher:
a few viewers in two processes for a few seconds get every part, make no errors,
ask for delta updates once the window is long enough, and the report prices the
origin from its /proc and /metrics.

The tool runs as the command line a benchmark uses, pointed at the multivariant
playlist only: it must find the media playlist and the parts from the URIs the server
writes (here with viewer statistics on, so they carry a player id).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ffmpeg_publish

pytestmark = pytest.mark.e2e

TOOL = Path(__file__).resolve().parents[2] / "bench" / "llhls_load.py"
VIEWERS = 6
WINDOW_S = 5


def test_viewers_get_every_part_without_errors(live, processes, tmp_path) -> None:
    stream = live.create_livestream(reconnect_window_s=0, record=False)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=60)
    live.wait_playable(stream["playback_id"])
    report_path = tmp_path / "report.json"
    command = [
        sys.executable, str(TOOL), f"{live.http}/live/{stream['playback_id']}/index.m3u8",
        "--viewers", str(VIEWERS), "--workers", "2", "--seconds", str(WINDOW_S),
        "--ramp", "1", "--settle", "2", "--baseline", "1",
        "--origin-pid", str(live.process.pid), "--metrics", f"{live.http}/metrics",
        "--json", str(report_path),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(report_path.read_text())

    assert report["errors"] == {}, report["error_samples"]
    # 200 ms parts: about five a second were made and measured, each fetched by
    # every viewer (once: a part fetched twice would count twice here).
    assert report["parts"] >= 3 * (WINDOW_S - 1)
    assert report["part_fetches_per_part"] == VIEWERS
    # Each viewer: a blocking reload and a part per part, so about ten requests a second.
    assert report["requests_per_s"] >= 0.6 * VIEWERS * 10
    assert report["delta_playlists"] > 0  # the 7 s window passes CAN-SKIP-UNTIL (6 s)
    assert report["origin_requests"]["part"] > 0 and report["origin_requests"]["playlist"] > 0
    assert report["origin_us_per_request"] > 0 and report["tool_us_per_request"] > 0
    assert report["origin_rss_mb"] > 20
    assert "p99" in report["delay_ms"]
