"""Segments that have left the playlist: when the window hands them to its spill, when
it drops them, and the file spool that keeps them on disk."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest
from hls_testing import FakeClock, feed, make_window, part_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

import live.hls.spool as spool_module
from live.hls import HlsWindow
from live.hls.playlist import render_media_playlist
from live.hls.spill import Chunks, MemorySpill
from live.hls.spool import HlsSpool


class RecordingSpill(MemorySpill):
    """Keeps in memory and remembers what it was given and asked to drop."""

    def __init__(self, *, fail: bool = False) -> None:
        self.kept: dict[int, Chunks] = {}
        self.dropped: list[int] = []
        self.closed = False
        self.fail = fail

    def keep(self, key: int, chunks: Chunks) -> object | None:
        if self.fail:
            return None
        self.kept[key] = chunks
        return (key, chunks)

    def read(self, handle: object) -> Chunks | None:
        assert isinstance(handle, tuple)
        return handle[1]

    def drop(self, handle: object) -> None:
        assert isinstance(handle, tuple)
        self.dropped.append(handle[0])

    def close(self) -> None:
        self.closed = True

    @property
    def held(self) -> set[int]:
        return set(self.kept) - set(self.dropped)


def spilling_window(spill: object, *, window_segments: int = 7, td: int = 1) -> HlsWindow:
    window = HlsWindow(
        target_duration=td,
        part_target=0.2,
        window_segments=window_segments,
        clock=FakeClock(),
        spill=spill,  # type: ignore[arg-type]
    )
    window.set_init(b"ftyp-moov-0")
    return window


def present(window: HlsWindow, upto: int) -> dict[int, bytes]:
    return {msn: data for msn in range(upto) if (data := window.segment_data(msn)) is not None}


def test_segments_are_spilled_when_they_leave_the_playlist_and_dropped_when_expired() -> None:
    spill = RecordingSpill()
    w = spilling_window(spill)
    plain = make_window()  # the same feed, nothing spilled
    for step in range(30):
        feed(w, 1)
        feed(plain, 1)
        # Spilling changes nothing a viewer sees: the same segments, the same bytes, for
        # as long as without it (RFC 8216 §6.2.2 lifetime, tested in test_hls_window).
        assert present(w, step + 2) == present(plain, step + 2)
        listed = {s.msn for s in w.snapshot().segments}
        held = {msn for msn in range(step + 2) if w.is_spilled(msn)}
        assert held == spill.held
        assert not held & listed  # a listed segment is never spilled
        # Every retained segment that left the playlist is spilled (its part files,
        # 6 x TD, are gone before it leaves a 7-segment playlist).
        assert held == set(present(w, step + 2)) - listed
    assert spill.dropped == list(range(len(spill.dropped)))  # oldest first, each once
    assert len(spill.dropped) > 10 and len(spill.held) == 8  # window_segments + 1
    for msn in spill.held:
        assert w.segment_chunks(msn) == spill.kept[msn]
        assert w.segment_data(msn) == b"".join(part_bytes(5 * msn + i) for i in range(5))


def test_segment_with_part_files_left_is_spilled_only_once_they_are_gone() -> None:
    # 3 segments of 1 s in the playlist, but part files are kept 6 x TD = 6 s.
    spill = RecordingSpill()
    w = spilling_window(spill, window_segments=3)
    feed(w, 6)
    w.start_segment()  # closes segment 5: the playlist is 3..5
    assert w.media_sequence == 3
    assert w.part_data(0) is not None and not w.is_spilled(0)  # parts still served
    assert spill.kept == {}
    feed(w, 1)  # media end 7 s: segment 0's part files go, and it goes to the spill
    assert w.part_data(0) is None and w.is_spilled(0)
    assert w.part_data(5) is not None and not w.is_spilled(1)
    assert w.segment_data(0) == b"".join(part_bytes(i) for i in range(5))


def test_a_spill_that_cannot_keep_leaves_the_segment_in_memory() -> None:
    spill = RecordingSpill(fail=True)
    w = spilling_window(spill)
    plain = make_window()
    feed(w, 20)
    feed(plain, 20)
    assert not any(w.is_spilled(msn) for msn in range(20))
    assert present(w, 20) == present(plain, 20)
    spill.fail = False
    feed(w, 1)
    feed(plain, 1)
    # The next segment that leaves is spilled; the ones that failed are not retried.
    assert [msn for msn in range(21) if w.is_spilled(msn)] == [12]
    assert present(w, 21) == present(plain, 21)
    assert spill.dropped == []


def test_close_frees_everything_the_spill_holds() -> None:
    spill = RecordingSpill()
    w = spilling_window(spill)
    feed(w, 20)
    w.end()
    assert spill.held and not spill.closed
    assert w.segment_data(min(spill.held)) is not None  # an ended window still serves
    w.close()
    assert spill.closed
    assert present(w, 20) == {}
    w.close()  # twice is harmless


# ---------------------------------------------------------------------- the file spool


def test_file_spill_round_trip_and_cleanup(tmp_path: Path) -> None:
    spool = HlsSpool.open(tmp_path)
    spill = spool.spill()
    chunks = (b"moof1" * 1000, b"", b"mdat2" * 30_000, os.urandom(100_000))
    handle = spill.keep(42, chunks)
    assert handle is not None
    path = spill.directory / "42.m4s"
    assert path.read_bytes() == b"".join(chunks)
    assert spill.read(handle) == (b"".join(chunks),)
    other = spill.keep(43, (b"x",))
    spill.drop(handle)
    assert not path.exists() and spill.read(handle) is None  # a lost file reads as None
    spill.drop(handle)  # twice is harmless
    assert other is not None and spill.read(other) == (b"x",)
    spill.close()
    assert not spill.directory.exists()
    assert spool.root == tmp_path / "hls-spool" and spool.root.exists()


def test_file_spill_writes_more_chunks_than_one_writev_takes(tmp_path: Path) -> None:
    spill = HlsSpool.open(tmp_path).spill()
    chunks = tuple(f"{i};".encode() for i in range(3000))
    handle = spill.keep(1, chunks)
    assert handle is not None and spill.read(handle) == (b"".join(chunks),)


def test_spool_is_emptied_at_start_up_and_windows_get_their_own_directories(
    tmp_path: Path,
) -> None:
    stale = tmp_path / "hls-spool" / "0" / "7.m4s"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier run")
    spool = HlsSpool.open(tmp_path)
    assert list(spool.root.iterdir()) == []
    a, b = spool.spill(), spool.spill()
    assert a.directory != b.directory
    assert a.keep(1, (b"a",)) is not None and b.keep(1, (b"b",)) is not None
    spool.clear()
    assert not spool.root.exists()


def test_failed_write_is_logged_once_and_the_window_keeps_the_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spool = HlsSpool.open(tmp_path)
    spill = spool.spill()
    real_writev = os.writev

    def full(fd: int, buffers: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "writev", full)
    w = spilling_window(spill)
    plain = make_window()
    with caplog.at_level(logging.INFO, logger="live.hls.spool"):
        feed(w, 20)
        feed(plain, 20)
        assert present(w, 20) == present(plain, 20)  # nothing lost
        assert not any(w.is_spilled(msn) for msn in range(20))
        assert list(spill.directory.iterdir()) == []  # no partial files left behind
        failures = [r for r in caplog.records if "cannot write" in r.getMessage()]
        assert len(failures) == 1 and failures[0].levelno == logging.WARNING
        monkeypatch.setattr(spool_module.os, "writev", real_writev)
        feed(w, 1)
        feed(plain, 1)
        assert w.is_spilled(12) and present(w, 21) == present(plain, 21)
        assert any("work again" in r.getMessage() for r in caplog.records)


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_writev = os.writev

    def dribble(fd: int, buffers: list[memoryview]) -> int:
        return real_writev(fd, [buffers[0][:7]])  # 7 bytes at a time

    monkeypatch.setattr(spool_module.os, "writev", dribble)
    spill = HlsSpool.open(tmp_path).spill()
    chunks = (b"a" * 20, b"bc", b"d" * 15)
    handle = spill.keep(5, chunks)
    assert handle is not None and spill.read(handle) == (b"".join(chunks),)


def test_window_with_the_file_spool_serves_identical_bytes(tmp_path: Path) -> None:
    spill = HlsSpool.open(tmp_path).spill()
    w = spilling_window(spill)
    plain = make_window()
    for _ in range(25):
        feed(w, 1)
        feed(plain, 1)
        assert present(w, 26) == present(plain, 26)
    on_disk = sorted(int(p.stem) for p in spill.directory.iterdir())
    assert on_disk == [msn for msn in range(26) if w.is_spilled(msn)]
    assert len(on_disk) == 8
    w.close()
    assert not spill.directory.exists()


class JoinedSpill(MemorySpill):
    """Keeps a joined copy, so nothing it serves shares memory with the window."""

    def __init__(self) -> None:
        self.held: dict[int, bytes] = {}

    def keep(self, key: int, chunks: Chunks) -> object | None:
        assert key not in self.held
        self.held[key] = b"".join(chunks)
        return key

    def read(self, handle: object) -> Chunks | None:
        assert isinstance(handle, int)
        return (self.held[handle],)

    def drop(self, handle: object) -> None:
        assert isinstance(handle, int)
        del self.held[handle]


_part = st.tuples(st.just("part"), st.floats(0.3, 0.5))
_ops = st.lists(
    st.one_of(
        *[_part] * 6,
        st.tuples(st.just("segment"), st.booleans()),
        st.tuples(st.just("init"), st.none()),
    ),
    min_size=20,
    max_size=250,
)


@settings(max_examples=60, deadline=None)
@given(ops=_ops, window_segments=st.integers(1, 6))
def test_spilling_changes_nothing_a_viewer_can_fetch(
    ops: list[tuple[str, object]], window_segments: int
) -> None:
    spill = JoinedSpill()
    windows = [
        HlsWindow(
            target_duration=2,
            part_target=0.5,
            window_segments=window_segments,
            clock=FakeClock(),
            spill=spill if spilling else None,
        )
        for spilling in (True, False)
    ]
    w, plain = windows
    for window in windows:
        window.set_init(b"init")
    open_duration = 0.0
    for op, arg in ops:
        duration = float(arg) if op == "part" else 0.0  # type: ignore[arg-type]
        cut = op == "segment" or open_duration + duration > 2  # segments stay within TD
        for window in windows:
            if op == "init":
                window.set_init(b"init-%d" % window.next_part)
                continue
            if cut:
                window.start_segment(discontinuity=op == "segment" and bool(arg))
            if op == "part":
                size = window.next_part % 7 + 1
                window.add_part(bytes([window.next_part % 251]) * size, duration, cut)
        if cut:
            open_duration = 0.0
        open_duration += duration
        if not w.has_parts:
            continue
        snap = w.snapshot()
        assert render_media_playlist(snap) == render_media_playlist(plain.snapshot())
        top = w.next_part + 1  # more than any MSN
        assert present(w, top) == present(plain, top)
        assert all(w.part_data(n) == plain.part_data(n) for n in range(top))
        assert all(w.init_data(n) == plain.init_data(n) for n in range(top))
        spilled = {msn for msn in range(top) if w.is_spilled(msn)}
        assert set(spill.held) == spilled
        assert not spilled & {s.msn for s in snap.segments}
