"""Random packager sequences: the playlist invariants of SPECS 1.1 hold after every step."""

from __future__ import annotations

import re

from hls_testing import FakeClock, parse
from hypothesis import given, settings
from hypothesis import strategies as st

from live.hls import HlsWindow
from live.hls.playlist import render_media_playlist

TD = 2
PART_TARGET = 0.5

_part = st.tuples(st.just("part"), st.floats(0.3, PART_TARGET))
# Mostly parts, so that windows fill, roll and drop discontinuities and inits.
ops = st.lists(
    st.one_of(
        _part,
        _part,
        _part,
        _part,
        _part,
        _part,
        st.tuples(st.just("segment"), st.booleans()),
        st.tuples(st.just("init"), st.none()),
    ),
    min_size=20,
    max_size=250,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, window_segments=st.integers(1, 6))
def test_invariants_hold_after_every_step(
    ops: list[tuple[str, object]], window_segments: int
) -> None:
    clock = FakeClock()
    w = HlsWindow(
        target_duration=TD, part_target=PART_TARGET, window_segments=window_segments, clock=clock
    )
    w.set_init(b"init")
    last_seq = (0, 0)
    dseq_of: dict[str, int] = {}
    open_duration = 0.0
    expected_hint: str | None = None

    for op, arg in ops:
        if op == "part":
            duration = float(arg)  # type: ignore[arg-type]
            if open_duration + duration > TD:  # the packager keeps segments within TD
                w.start_segment()
                open_duration = 0.0
            w.add_part(b"p" * (w.next_part % 7 + 1), duration, open_duration == 0.0)
            open_duration += duration
            clock.advance(duration)
        elif op == "segment":
            w.start_segment(discontinuity=bool(arg))
            open_duration = 0.0
        else:
            w.set_init(b"init")
        if not w.has_parts:
            continue
        snap = w.snapshot()
        text = render_media_playlist(snap)
        pl = parse(text)

        # TD fixed, EXTINF within it, parts add up.
        assert pl.target_duration == TD
        for seg in pl.segments:
            if seg.uri:
                assert round(seg.duration) <= TD
                if seg.parts:
                    assert abs(sum(p.duration for p in seg.parts) - seg.duration) < 1e-3
        assert pl.server_control.part_hold_back >= 3 * PART_TARGET - 1e-9

        # MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE only go up; each segment keeps its
        # discontinuity sequence number across reloads.
        seq = (pl.media_sequence, pl.discontinuity_sequence or 0)
        assert seq[0] >= last_seq[0] and seq[1] >= last_seq[1]
        last_seq = seq
        dseq = seq[1]
        blocks = re.split(r"\n(?=#EXT-X-(?:DISCONTINUITY\n|PROGRAM-DATE-TIME))", text)
        for seg_text in blocks:
            if seg_text.split("\n", 1)[0] == "#EXT-X-DISCONTINUITY":
                dseq += 1
            uri = re.search(r"^(seg-\d+\.m4s)$", seg_text, re.M)
            if uri:
                assert dseq_of.setdefault(uri.group(1), dseq) == dseq

        # The hint names the next part; the next part gets exactly that URI.
        parts = [p.uri for s in pl.segments for p in s.parts]
        if expected_hint is not None and op == "part":
            assert parts[-1] == expected_hint
        assert pl.preload_hint.uri == f"part-{w.next_part}.m4s"
        expected_hint = pl.preload_hint.uri

        # Everything listed can be fetched.
        for s in snap.segments:
            assert w.init_data(s.init_id) is not None
            if s.closed:
                assert w.segment_data(s.msn) is not None
            for p in s.parts or ():
                assert w.part_data(p.index) is not None

        # A rolled window still covers 3 x TD; part tags only near the end.
        closed = snap.closed_segments
        if snap.media_sequence > 0:
            assert sum(s.duration for s in closed) >= 3 * TD - 1e-6
        end = sum(s.duration for s in snap.segments)
        start = 0.0
        for s in snap.segments:
            if s.parts is not None and s.closed:
                assert end - start <= 3 * TD + 1e-6
            start += s.duration

        # Memory stays bounded.
        assert len(w._by_msn) <= len(closed) + window_segments + 1 + 1
        assert len(w._parts) <= (6 * TD + TD) / 0.3 + 2

        # A delta update keeps the sequence numbers and the tail.
        delta = parse(render_media_playlist(snap, skip=True))
        skipped = delta.skip.skipped_segments if delta.skip else 0
        assert delta.media_sequence == pl.media_sequence
        assert [s.uri for s in delta.segments] == [s.uri for s in pl.segments][skipped:]
