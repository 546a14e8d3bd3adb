"""Short soaks (the long ones are bench/soak_crash.py and bench/soak_load.py): a
server killed and restarted under a publisher loses no acknowledged part but one
per SIGKILL; a server under mixed publishers and viewers leaks nothing."""

from __future__ import annotations

import signal

import pytest
from soak import crash_soak, load_soak

pytestmark = pytest.mark.e2e


def test_kills_and_restarts_lose_at_most_one_part_per_sigkill(processes, tmp_path):
    result = crash_soak(
        processes, tmp_path / "data", seconds=40, interval=(7.0, 10.0),
        signals=[signal.SIGKILL, signal.SIGTERM, signal.SIGKILL],
    )  # fmt: skip
    print(result.summary())
    kinds = [life.signal for life in result.lives]
    assert "SIGKILL" in kinds and "SIGTERM" in kinds and kinds[-1] == "end", kinds
    for life in result.lives:
        assert len(life.acked) > 10, life  # the watcher saw the stream
        allowed = 1 if life.signal == "SIGKILL" else 0
        assert len(life.missing) <= allowed, (life.signal, life.missing)
        assert life.recorded_parts >= len(life.acked) - allowed
    summary = result.summary()
    assert result.recorded_frames >= summary["frames_acknowledged"] - summary["frames_missing"]


def test_mixed_publishers_and_viewers_leak_nothing(processes, tmp_path):
    result = load_soak(
        processes, tmp_path / "data", seconds=30, kinds={"rtmp": 1, "srt": 1, "whip": 1},
        viewers=30, restart_every=8, restart_count=1, record_every=2, sample_every=2,
    )  # fmt: skip
    print(result.idle, result.samples, result.after, sep="\n")
    print(result.gap_summary(), result.error_kinds())
    assert result.restarted == 3  # one of each kind
    assert result.sessions == [1, 1, 1]  # each came back inside its reconnect window
    assert result.after.fds <= result.idle.fds + 5, (result.idle, result.after)
    assert result.after.tasks <= result.idle.tasks + 5, (result.idle, result.after)
    assert result.rss_growth_mb() <= 40, result.samples
    gaps = result.gap_summary()
    assert gaps["parts"] > 100 and gaps["p99_ms"] <= 1000, gaps
    errors = sum(result.error_kinds().values())
    assert errors <= result.viewer_requests * 0.01, result.error_kinds()
