"""The window's bookkeeping: numbering, segment closing, retention, inits, waiters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hls_testing import FakeClock, add_parts, feed, make_window, part_bytes

from live.hls import HlsWindow


def test_parts_are_numbered_globally_and_segments_close_on_start() -> None:
    w = make_window()
    feed(w, 2)
    w.start_segment()
    add_parts(w, 1)
    snap = w.snapshot()
    assert [s.msn for s in snap.segments] == [0, 1, 2]
    assert [s.closed for s in snap.segments] == [True, True, False]
    indices = [p.index for s in snap.segments for p in s.parts or ()]
    assert indices == list(range(11))
    assert (w.next_part, w.last_msn, w.last_part, w.last_closed_msn) == (11, 2, 0, 1)


def test_segment_is_the_concatenation_of_its_parts_and_parts_stay_intact() -> None:
    w = make_window()
    feed(w, 1, parts_per_segment=3)
    w.start_segment()
    assert w.segment_data(0) == part_bytes(0) + part_bytes(1) + part_bytes(2)
    assert [bytes(w.part_data(i) or b"") for i in range(3)] == [part_bytes(i) for i in range(3)]
    assert w.segment_data(1) is None  # the open segment is not a file yet


def test_a_segment_is_its_parts_themselves() -> None:
    w = make_window()
    feed(w, 1, parts_per_segment=3)
    w.start_segment()
    chunks = w.segment_chunks(0)
    assert chunks is not None and len(chunks) == 3
    for index in range(3):
        part = w.part_data(index)
        assert isinstance(part, bytes) and part is chunks[index]  # each byte held once
        assert part == part_bytes(index)
    assert w.segment_chunks(1) is None  # the open segment is not a file yet


def test_extinf_is_the_sum_of_part_durations() -> None:
    w = make_window(td=2)
    w.start_segment()
    for d in (0.2, 0.2, 0.19, 0.21, 0.1):
        w.add_part(b"x", d, False)
    w.start_segment()
    seg = w.snapshot().segments[0]
    assert seg.duration == pytest.approx(0.9)
    assert seg.parts is not None
    assert sum(p.duration for p in seg.parts) == pytest.approx(seg.duration)


def test_empty_segments_do_not_consume_sequence_numbers() -> None:
    w = make_window()
    w.start_segment()
    w.start_segment()
    add_parts(w, 1)
    w.start_segment()
    w.start_segment()
    add_parts(w, 1)
    assert [s.msn for s in w.snapshot().segments] == [0, 1]


def test_add_part_without_start_segment_opens_one() -> None:
    w = make_window()
    add_parts(w, 2)
    assert w.last_msn == 0 and w.last_part == 1


def test_misuse_raises() -> None:
    w = HlsWindow(target_duration=1, clock=FakeClock())
    with pytest.raises(RuntimeError):
        w.add_part(b"x", 0.2, True)
    w.set_init(b"init")
    with pytest.raises(ValueError):
        w.add_part(b"x", 0, True)
    w.end()
    with pytest.raises(RuntimeError):
        w.add_part(b"x", 0.2, True)
    w.end()  # idempotent
    for kwargs in (
        {"target_duration": 0},
        {"target_duration": 1.5},
        {"target_duration": 1, "part_target": 0},
        {"target_duration": 1, "window_segments": 0},
    ):
        with pytest.raises(ValueError):
            HlsWindow(**kwargs)  # type: ignore[arg-type]


def test_program_date_time_defaults_to_the_clock_and_naive_means_utc() -> None:
    clock = FakeClock(1_800_000_000.25)
    w = make_window(clock=clock)
    w.start_segment()
    add_parts(w, 1)
    w.start_segment(program_date_time=datetime(2027, 1, 2, 3, 4, 5))
    add_parts(w, 1)
    a, b = w.snapshot().segments
    assert a.program_date_time == datetime.fromtimestamp(1_800_000_000.25, UTC)
    assert b.program_date_time == datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_new_init_starts_a_discontinuous_segment_with_its_map() -> None:
    w = make_window()
    feed(w, 1)
    assert w.snapshot().pending_init_id is None
    w.set_init(b"init-1")
    assert w.snapshot().pending_init_id == 1  # a MAP hint while the new init is pending
    w.start_segment()
    add_parts(w, 1)
    a, b = w.snapshot().segments
    assert (a.init_id, a.discontinuity) == (0, False)
    assert (b.init_id, b.discontinuity) == (1, True)
    assert w.snapshot().pending_init_id is None
    assert w.init_data(0) == b"ftyp-moov-0" and w.init_data(1) == b"init-1"


def test_new_init_mid_segment_cuts_a_new_segment_at_the_next_part() -> None:
    w = make_window()
    add_parts(w, 2)
    w.set_init(b"init-1")
    add_parts(w, 1)
    a, b = w.snapshot().segments
    assert (a.msn, a.closed, a.init_id) == (0, True, 0)
    assert (b.msn, b.init_id, b.discontinuity) == (1, 1, True)


def test_discontinuity_flag_and_none_on_the_very_first_segment() -> None:
    w = make_window()
    w.start_segment(discontinuity=True)
    add_parts(w, 1)
    w.start_segment(discontinuity=True)
    add_parts(w, 1)
    w.start_segment()
    add_parts(w, 1)
    assert [s.discontinuity for s in w.snapshot().segments] == [False, True, False]


def test_unused_init_is_freed_when_replaced_before_any_segment_uses_it() -> None:
    w = make_window()
    w.set_init(b"init-1")
    assert w.init_data(0) is None
    add_parts(w, 1)
    assert w.snapshot().segments[0].init_id == 1


def test_window_rolls_after_window_segments() -> None:
    w = make_window(window_segments=3)
    feed(w, 10)
    w.start_segment()
    snap = w.snapshot()
    assert snap.media_sequence == 7
    assert [s.msn for s in snap.segments] == [7, 8, 9]


def test_window_never_shrinks_below_three_target_durations() -> None:
    w = make_window(td=1, window_segments=3)
    feed(w, 20, parts_per_segment=2)  # 0.4 s segments
    w.start_segment()
    closed = w.snapshot().closed_segments
    assert len(closed) > 3
    assert sum(s.duration for s in closed) >= 3.0 - 1e-9
    assert sum(s.duration for s in closed[1:]) < 3.0


def test_discontinuity_sequence_counts_discontinuities_that_left() -> None:
    w = make_window(window_segments=2)
    seen: list[tuple[int, int]] = []
    for i in range(12):
        w.start_segment(discontinuity=i % 4 == 2)
        add_parts(w, 5)
        snap = w.snapshot()
        seen.append((snap.media_sequence, snap.discontinuity_sequence))
    assert seen == sorted(seen)
    snap = w.snapshot()
    # discontinuities at msn 2, 6, 10; 3 closed segments stay for 3 x TD, so 0..7 left
    assert snap.media_sequence == 8
    assert snap.discontinuity_sequence == 2


def test_part_tags_trimmed_after_3td_files_kept_another_3td_then_freed() -> None:
    w = make_window(td=1, window_segments=20)
    feed(w, 5)
    w.start_segment()
    add_parts(w, 1)  # media end = 5.2 s
    snap = w.snapshot()
    listed = {s.msn for s in snap.segments if s.parts is not None}
    assert listed == {3, 4, 5}  # segment starts within 3 s of the end
    assert w.part_data(0) is not None  # 5.2 s from the end: still requestable

    add_parts(w, 4)
    feed(w, 1)  # media end = 7.0 s: segment 0 (start 0) is > 6 TD away
    assert w.part_data(0) is None and w.part_data(4) is None
    assert w.part_data(5) is not None
    assert w.segment_data(0) is not None  # whole segments live longer


def test_segments_are_freed_one_window_after_leaving_the_playlist() -> None:
    w = make_window(window_segments=3)
    feed(w, 12)
    w.start_segment()
    assert w.media_sequence == 9
    present = [msn for msn in range(12) if w.segment_data(msn) is not None]
    assert present == list(range(5, 12))  # 3 in the playlist + 4 retired
    assert w.init_data(0) is not None


def test_old_inits_are_freed_with_their_last_segment() -> None:
    w = make_window(window_segments=1)
    feed(w, 3)
    w.set_init(b"init-1")
    feed(w, 12)
    w.start_segment()
    assert w.init_data(0) is None
    assert w.init_data(1) == b"init-1"


def test_end_closes_the_open_segment() -> None:
    w = make_window()
    feed(w, 1)
    w.start_segment()
    add_parts(w, 2)
    w.end()
    snap = w.snapshot()
    assert snap.ended and all(s.closed for s in snap.segments)
    assert w.segment_data(1) == part_bytes(5) + part_bytes(6)
    assert not w.is_hinted(w.next_part)


@pytest.mark.parametrize(
    ("msn", "part", "expected"),
    [
        (0, None, True),  # old segment
        (1, None, True),  # newest closed segment
        (2, None, False),  # open segment: not complete yet
        (0, 99, True),  # past the end of old segment 0 -> (1, 0) exists
        (1, 4, True),  # last part of closed segment 1
        (1, 5, False),  # past the end of segment 1 -> (2, 0), not there yet
        (2, 0, False),
        (3, 0, False),
    ],
)
def test_blocking_reload_satisfaction(msn: int, part: int | None, expected: bool) -> None:
    w = make_window()
    feed(w, 2)
    w.start_segment()  # segment 1 closed; segment 2 open and empty
    assert w.is_satisfied(msn, part) is expected


def test_satisfaction_inside_the_open_segment() -> None:
    w = make_window()
    feed(w, 1)
    w.start_segment()
    add_parts(w, 2)
    assert w.is_satisfied(1, 1) and not w.is_satisfied(1, 2)
    assert not w.is_satisfied(1, None)


async def test_wait_for_wakes_on_add_part_and_leaves_no_waiters() -> None:
    w = make_window()
    feed(w, 1)
    w.start_segment()
    task = asyncio.create_task(w.wait_for(1, 0))
    await asyncio.sleep(0)
    assert not task.done() and w.waiter_count == 1
    add_parts(w, 1)
    await asyncio.wait_for(task, 1)
    assert w.waiter_count == 0


async def test_msn_only_wait_wakes_when_the_segment_closes() -> None:
    w = make_window()
    add_parts(w, 3)
    task = asyncio.create_task(w.wait_for(0, None))
    await asyncio.sleep(0)
    add_parts(w, 1)
    await asyncio.sleep(0)
    assert not task.done()
    w.start_segment()
    await asyncio.wait_for(task, 1)


async def test_cancelled_waits_are_removed() -> None:
    w = make_window()
    tasks = [asyncio.create_task(w.wait_for(5, 0)) for _ in range(3)]
    tasks.append(asyncio.create_task(w.wait_for_part(0)))
    await asyncio.sleep(0)
    assert w.waiter_count == 4
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert w.waiter_count == 0


async def test_end_wakes_every_waiter() -> None:
    w = make_window()
    tasks = [asyncio.create_task(w.wait_for(1, 3)), asyncio.create_task(w.wait_for_part(7))]
    await asyncio.sleep(0)
    w.end()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert w.waiter_count == 0


async def test_wait_for_part_wakes_on_the_hinted_part() -> None:
    w = make_window()
    add_parts(w, 1)
    assert w.is_hinted(1) and not w.is_hinted(2)
    task = asyncio.create_task(w.wait_for_part(1))
    await asyncio.sleep(0)
    assert not task.done()
    w.start_segment()  # the hinted part may open a new segment: same name either way
    add_parts(w, 1)
    await asyncio.wait_for(task, 1)
    assert bytes(w.part_data(1) or b"") == part_bytes(1)


async def test_first_number_offsets_every_name() -> None:
    """A later session under the same playback id must not reuse cached URLs."""
    w = HlsWindow(target_duration=1, clock=FakeClock(), first_number=5000)
    assert (w.first_msn, w.last_msn, w.last_part, w.has_parts) == (5000, 4999, -1, False)
    assert not w.is_satisfied(5000, 0)
    task = asyncio.create_task(w.wait_for(5000, 0))
    w.set_init(b"init")
    await asyncio.sleep(0)
    assert not task.done()
    feed(w, 2)
    await asyncio.wait_for(task, 1)
    snap = w.snapshot()
    assert snap.media_sequence == 5000
    assert [s.msn for s in snap.segments] == [5000, 5001]
    assert snap.segments[0].init_id == 5000 and w.init_data(5000) == b"init"
    assert snap.segments[0].parts is not None and snap.segments[0].parts[0].index == 5000
    assert snap.next_part == 5010 and w.is_hinted(5010)
    with pytest.raises(ValueError):
        HlsWindow(target_duration=1, first_number=-1)


def test_repeating_the_current_init_changes_nothing() -> None:
    w = make_window()
    feed(w, 1)
    version = w.version
    w.set_init(b"ftyp-moov-0")
    assert w.version == version and w.snapshot().pending_init_id is None
    w.start_segment()
    add_parts(w, 1)
    assert [(s.init_id, s.discontinuity) for s in w.snapshot().segments] == [(0, False)] * 2


async def test_waiters_for_one_part_share_one_future_and_wake_together() -> None:
    w = make_window()
    add_parts(w, 1)
    gates = [w.enter_part_wait(1) for _ in range(100)]
    assert gates[0] is not None and all(g is gates[0] for g in gates)
    assert w.waiter_count == 100
    woken: list[int] = []
    tasks = [
        asyncio.create_task(asyncio.wait((g.future,)))  # type: ignore[union-attr]
        for g in gates
    ]
    for n, task in enumerate(tasks):
        task.add_done_callback(lambda _t, n=n: woken.append(n))
    await asyncio.sleep(0)
    add_parts(w, 1)
    assert gates[0].future.done()  # one set_result answers all hundred
    await asyncio.gather(*tasks)
    assert sorted(woken) == list(range(100))
    for g in gates:
        w.leave(g)  # type: ignore[arg-type]
    assert w.waiter_count == 0 and w.enter_part_wait(1) is None


async def test_one_waiter_leaving_does_not_disturb_the_others() -> None:
    w = make_window()
    add_parts(w, 1)
    first, second = w.enter_part_wait(1), w.enter_part_wait(1)
    assert first is second and first is not None
    w.leave(first)
    assert not first.future.cancelled() and w.waiter_count == 1
    add_parts(w, 1)
    assert first.future.done() and not first.future.cancelled()
    w.leave(first)
    assert w.waiter_count == 0
