"""Per-part lateness of `bench/many_streams.py` (`bench/part_lateness.py`): the T0
estimate, the on-time rule and skipped parts, on playlists from the server's renderer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from part_lateness import Part, PartLog, lateness, listed_parts, summarize

from live.hls import HlsWindow
from live.hls.playlist import render_media_playlist


def add_parts(window: HlsWindow, durations: list[float]) -> None:
    """Parts of these durations, a new 1 s segment whenever five have been added."""
    for duration in durations:
        if window.next_part % 5 == 0:
            window.start_segment()
        window.add_part(b"moof-mdat", duration, window.next_part % 5 == 0)


def playlist(window: HlsWindow, *, skip: bool = False) -> str:
    return render_media_playlist(window.snapshot(), skip=skip)


@pytest.fixture
def window() -> HlsWindow:
    window = HlsWindow(target_duration=1, part_target=0.2, window_segments=7)
    window.set_init(b"ftyp-moov")
    return window


def test_parts_and_durations_are_read_from_full_and_delta_playlists(window) -> None:
    add_parts(window, [0.2] * 40 + [0.16667, 0.2])
    full, delta = listed_parts(playlist(window)), listed_parts(playlist(window, skip=True))
    assert "#EXT-X-SKIP" in playlist(window, skip=True)
    assert full == delta
    assert full[-1] == ("part-41.m4s", 0.2)
    assert full[-2] == ("part-40.m4s", 0.16667)


def test_the_first_playlist_only_sets_where_the_watcher_starts(window) -> None:
    add_parts(window, [0.2] * 7)
    log = PartLog()
    assert log.add_playlist(playlist(window), 10.0) == 0
    add_parts(window, [0.2, 0.16667, 0.2])
    assert log.add_playlist(playlist(window), 10.5) == 3
    assert log.add_playlist(playlist(window), 10.6) == 0  # nothing new
    add_parts(window, [0.2])
    assert log.add_playlist(playlist(window, skip=True), 10.7) == 1
    assert [p.arrival for p in log.parts] == [10.5, 10.5, 10.5, 10.7]
    assert [p.start for p in log.parts] == pytest.approx([0.0, 0.2, 0.36667, 0.56667])
    assert {p.run for p in log.parts} == {0} and log.skips == 0


def test_a_part_missed_counts_as_a_skip_and_starts_a_new_run(window) -> None:
    add_parts(window, [0.2] * 10)
    log = PartLog()
    log.add_playlist(playlist(window), 1.0)
    add_parts(window, [0.2])
    log.add_playlist(playlist(window), 1.2)
    # The watcher falls behind by more than the parts a playlist lists (3 segments).
    add_parts(window, [0.2] * 30)
    assert log.add_playlist(playlist(window), 9.0) == 0
    assert log.skips == 1
    add_parts(window, [0.2])
    assert log.add_playlist(playlist(window), 9.2) == 1
    assert [(p.run, p.start) for p in log.parts] == [(0, 0.0), (1, 0.0)]


def parts_at(t0: float, durations: list[float], delays: list[float], run: int = 0) -> list[Part]:
    """Parts whose playlists arrived `delay` after their end at the publisher's pace."""
    parts, start = [], 0.0
    for duration, delay in zip(durations, delays, strict=True):
        parts.append(Part(t0 + start + duration + delay, start, duration, run))
        start += duration
    return parts


def test_t0_is_the_best_part_and_lateness_is_counted_from_it() -> None:
    parts = parts_at(100.0, [0.2] * 4, [0.05, 0.02, 0.09, 0.03])
    timed = lateness(0, parts, target=0.2, allowance=0.1)
    assert [t.lateness for t in timed] == pytest.approx([0.03, 0.0, 0.07, 0.01])
    assert all(t.on_time for t in timed)


def test_on_time_means_within_target_plus_allowance_of_the_part_start() -> None:
    # Lateness 0 (best part), exactly 0.1 (on time), just over 0.1 (late), and a short
    # part (0.1 s) 0.15 s late: announced 0.25 s after its start, within 0.2 + 0.1.
    parts = parts_at(5.0, [0.2, 0.2, 0.2, 0.1], [0.0, 0.1, 0.1001, 0.15])
    timed = lateness(3, parts, target=0.2, allowance=0.1)
    assert [t.on_time for t in timed] == [True, True, False, True]
    # A long part (0.3 s, as a cut at a timestamp step makes) 0.05 s late is late.
    late_long = lateness(3, parts_at(5.0, [0.2, 0.3], [0.0, 0.05]), target=0.2, allowance=0.1)
    assert [t.on_time for t in late_long] == [True, False]


def test_each_run_has_its_own_t0() -> None:
    parts = parts_at(0.0, [0.2] * 3, [0.0, 0.05, 0.0]) + parts_at(
        50.0, [0.2] * 3, [0.2, 0.0, 0.0], run=1
    )
    timed = lateness(0, parts, target=0.2, allowance=0.1)
    assert [t.lateness for t in timed] == pytest.approx([0.0, 0.05, 0.0, 0.2, 0.0, 0.0])
    assert [t.on_time for t in timed] == [True, True, True, False, True, True]


def test_summary_pools_streams_and_names_the_worst() -> None:
    timed = lateness(1, parts_at(10.0, [0.2] * 5, [0.0, 0.3, 0.0, 0.0, 0.0]),
                     target=0.2, allowance=0.1)  # fmt: skip
    timed += lateness(2, parts_at(10.0, [0.2] * 5, [0.0, 0.15, 0.2, 0.0, 0.0]),
                      target=0.2, allowance=0.1)  # fmt: skip
    summary = summarize(timed, window_start=10.0)
    assert summary.parts == 10 and summary.late == 3 and summary.streams_with_late == 2
    assert summary.worst_stream == 2 and summary.worst_late == 2
    assert summary.max == pytest.approx(0.3) and summary.p50 == pytest.approx(0.0)
    assert sum(summary.late_by_second.values()) == 3


def test_no_parts() -> None:
    summary = summarize([], window_start=0.0)
    assert summary.parts == 0 and summary.worst_stream is None
