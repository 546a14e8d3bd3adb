"""Playlist text against the SPECS rules, parsed back with the m3u8 library."""

from __future__ import annotations

import re

import pytest
from hls_testing import FakeClock, add_parts, feed, make_window, parse

from live.hls import HlsStream, HlsWindow, Rendition
from live.hls.playlist import (
    RenditionReport,
    delta_skip_count,
    render_media_playlist,
    render_multivariant,
)


def render(w: HlsWindow, **kwargs: object) -> str:
    return render_media_playlist(w.snapshot(), **kwargs)  # type: ignore[arg-type]


def live_window() -> HlsWindow:
    w = make_window(td=1)
    feed(w, 3)
    w.start_segment()
    add_parts(w, 2)
    return w


def test_low_latency_header() -> None:
    text = render(live_window())
    assert text.startswith("#EXTM3U\n") and text.endswith("\n")
    pl = parse(text)
    assert pl.version == 9
    assert pl.target_duration == 1
    assert pl.server_control.can_block_reload == "YES"
    assert pl.server_control.part_hold_back >= 3 * 0.2 - 1e-9
    assert pl.server_control.can_skip_until >= 6 * 1
    assert pl.server_control.hold_back is None or pl.server_control.hold_back >= 3
    assert pl.part_inf.part_target == 0.2
    assert pl.media_sequence == 0
    assert "#EXT-X-DISCONTINUITY-SEQUENCE" not in text  # only when > 0
    assert "PART-HOLD-BACK=0.600" in text
    assert "#EXT-X-PLAYLIST-TYPE" not in text


def test_segments_parts_and_durations() -> None:
    pl = parse(render(live_window()))
    closed = [s for s in pl.segments if s.uri]
    assert [s.uri for s in closed] == ["seg-0.m4s", "seg-1.m4s", "seg-2.m4s"]
    for seg in closed:
        assert round(seg.duration) <= pl.target_duration
        assert seg.duration == _approx(1.0)
    listed = [s for s in closed if s.parts]
    assert [s.uri for s in listed] == ["seg-1.m4s", "seg-2.m4s"]  # seg-0 is > 3 TD away
    for seg in listed:
        assert sum(p.duration for p in seg.parts) == _approx(seg.duration)
        assert all(p.duration <= pl.part_inf.part_target for p in seg.parts)
        assert seg.parts[0].independent == "YES"
        assert all(p.independent is None for p in seg.parts[1:])
    open_seg = pl.segments[-1]
    assert open_seg.uri is None
    assert [p.uri for p in open_seg.parts] == ["part-15.m4s", "part-16.m4s"]
    assert pl.preload_hint.hint_type == "PART" and pl.preload_hint.uri == "part-17.m4s"


def test_every_segment_has_ms_program_date_time() -> None:
    clock = FakeClock(1_800_000_000.0)
    w = make_window(clock=clock)
    feed(w, 3, clock=clock)
    text = render(w)
    pdts = re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.*)$", text, re.M)
    assert pdts == [
        "2027-01-15T08:00:00.000Z",
        "2027-01-15T08:00:01.000Z",
        "2027-01-15T08:00:02.000Z",
    ]
    assert all(s.program_date_time is not None for s in parse(text).segments if s.uri)


def test_map_discontinuity_and_pdt_precede_the_first_part() -> None:
    w = make_window()
    feed(w, 2)
    w.set_init(b"init-1")
    feed(w, 1)
    w.start_segment(discontinuity=True)
    add_parts(w, 2)
    text = render(w)
    lines = text.splitlines()
    # Walk segment by segment: once an EXT-X-PART appeared, no segment-level tag may
    # follow until the segment's URI line.
    seen_part = False
    for line in lines:
        if line.startswith("#EXT-X-PART:"):
            seen_part = True
        elif line.startswith(("#EXT-X-MAP", "#EXT-X-DISCONTINUITY:", "#EXT-X-PROGRAM-DATE")):
            assert not seen_part, line
        elif line == "#EXT-X-DISCONTINUITY":
            assert not seen_part
        elif not line.startswith("#"):
            seen_part = False
    pl = parse(text)
    # (m3u8 only attaches the map to segments with a URI line)
    assert [s.init_section.uri for s in pl.segments if s.uri] == [
        "init-0.mp4",
        "init-0.mp4",
        "init-1.mp4",
    ]
    assert re.findall(r'MAP:URI="(.*)"', text) == ["init-0.mp4", "init-1.mp4"]
    assert [s.discontinuity for s in pl.segments if s.uri] == [False, False, True]
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2  # the open segment's too
    assert text.count("#EXT-X-MAP") == 2


def test_map_is_repeated_at_the_top_after_the_window_rolls() -> None:
    w = make_window(window_segments=3)
    feed(w, 3)
    w.set_init(b"init-1")
    feed(w, 6)
    w.start_segment()
    text = render(w)
    pl = parse(text)
    assert pl.media_sequence == 6
    assert text.count("#EXT-X-MAP") == 1
    assert all(s.init_section.uri == "init-1.mp4" for s in pl.segments if s.uri)


def test_msn_and_dsn_only_go_up_and_segments_keep_their_discontinuity_number() -> None:
    w = make_window(window_segments=3)
    last = (-1, -1)
    dseq_of: dict[str, int] = {}
    for i in range(30):
        if i % 5 == 3:
            w.set_init(f"init-{i}".encode())
        w.start_segment(discontinuity=i % 7 == 4)
        add_parts(w, 5)
        pl = parse(render(w))
        now = (pl.media_sequence, pl.discontinuity_sequence or 0)
        assert now[0] >= last[0] and now[1] >= last[1]
        last = now
        dseq = now[1]
        for seg in pl.segments:
            dseq += 1 if seg.discontinuity else 0
            if seg.uri:
                assert dseq_of.setdefault(seg.uri, dseq) == dseq
    assert last[0] > 20 and last[1] > 3


def test_part_tags_only_for_the_last_three_target_durations() -> None:
    w = make_window(td=1, window_segments=10)
    feed(w, 8)
    w.start_segment()
    add_parts(w, 1)
    pl = parse(render(w))
    with_parts = [s.uri for s in pl.segments if s.parts]
    assert with_parts == ["seg-6.m4s", "seg-7.m4s", None]
    assert pl.segments[0].parts == []


def test_hint_names_the_next_part_within_a_segment_and_across_a_boundary() -> None:
    w = make_window()
    feed(w, 1)
    w.start_segment()
    add_parts(w, 1)
    hint = parse(render(w)).preload_hint.uri
    add_parts(w, 1)  # same segment
    assert parse(render(w)).segments[-1].parts[-1].uri == hint
    hint = parse(render(w)).preload_hint.uri
    w.start_segment()
    add_parts(w, 1)  # the hinted part turned out to open a new segment
    pl = parse(render(w))
    assert pl.segments[-1].parts[0].uri == hint
    assert pl.segments[-2].uri == "seg-1.m4s"


def test_map_preload_hint_when_a_new_init_is_pending() -> None:
    w = live_window()
    w.set_init(b"init-1")
    text = render(w)
    assert '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="init-1.mp4"' in text
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-17.m4s"' in text
    w.start_segment()
    add_parts(w, 1)
    text = render(w)
    assert "TYPE=MAP" not in text
    assert 'EXT-X-MAP:URI="init-1.mp4"' in text


def test_endlist_without_hint() -> None:
    w = live_window()
    w.end()
    text = render(w)
    pl = parse(text)
    assert pl.is_endlist
    assert pl.preload_hint is None and "PRELOAD-HINT" not in text
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert all(s.uri for s in pl.segments)


def test_query_is_copied_onto_every_uri() -> None:
    w = live_window()
    w.set_init(b"init-1")
    text = render(w, query="token=abc", reports=[RenditionReport("480p", 3, 1)])
    uris = re.findall(r'URI="([^"]*)"', text) + [
        line for line in text.splitlines() if line and not line.startswith("#")
    ]
    assert len(uris) > 10
    assert all(u.endswith("?token=abc") for u in uris), uris


def test_rendition_reports() -> None:
    w = live_window()
    reports = [RenditionReport("720p", 3, 1), RenditionReport("480p", 2, 4)]
    pl = parse(render(w, reports=reports))
    got = [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports]
    assert got == [("../720p/index.m3u8", 3, 1), ("../480p/index.m3u8", 2, 4)]
    assert "RENDITION-REPORT" not in render(w)


def test_standard_mode_is_plain_hls_with_the_same_segments() -> None:
    w = live_window()
    text = render(w, low_latency=False, skip=True, reports=[RenditionReport("x", 1, 1)])
    pl = parse(text)
    assert pl.version in (6, 7)
    for tag in ("EXT-X-PART", "PART-INF", "PRELOAD-HINT", "CAN-BLOCK-RELOAD", "SKIP", "REPORT"):
        assert tag not in text
    assert [s.uri for s in pl.segments] == ["seg-0.m4s", "seg-1.m4s", "seg-2.m4s"]
    assert pl.segments[0].init_section.uri == "init-0.mp4"


def long_window() -> HlsWindow:
    w = make_window(td=1, window_segments=20)
    feed(w, 20)
    w.start_segment()
    add_parts(w, 2)
    return w


def test_delta_update_skips_old_segments_once() -> None:
    w = long_window()
    full = parse(render(w))
    text = render(w, skip=True)
    delta = parse(text)
    # 20 closed segments + 0.4 s: the skip boundary is 14.4 s, so 14 whole segments go.
    assert delta_skip_count(w.snapshot()) == 14
    assert delta.skip.skipped_segments == 14
    assert text.count("#EXT-X-SKIP") == 1
    assert delta.media_sequence == full.media_sequence
    assert [s.uri for s in delta.segments] == [s.uri for s in full.segments[14:]]
    assert delta.segments[0].init_section.uri == "init-0.mp4"
    assert delta.preload_hint.uri == full.preload_hint.uri
    assert delta.version >= 9


def test_delta_stops_before_a_discontinuity() -> None:
    w = make_window(td=1, window_segments=20)
    feed(w, 5)
    w.start_segment(discontinuity=True)
    add_parts(w, 5)
    feed(w, 14)
    w.start_segment()
    assert delta_skip_count(w.snapshot()) == 5
    text = render(w, skip=True)
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=5" in text
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1


def test_no_delta_when_the_first_listed_segment_is_discontinuous() -> None:
    w = make_window(td=1, window_segments=15)
    feed(w, 3)
    w.start_segment(discontinuity=True)
    add_parts(w, 5)
    feed(w, 14)
    w.start_segment()
    snap = w.snapshot()
    assert snap.media_sequence == 3 and snap.segments[0].discontinuity
    assert snap.discontinuity_sequence == 0
    assert delta_skip_count(snap) == 0
    assert "EXT-X-SKIP" not in render(w, skip=True)


def test_no_delta_after_endlist_or_when_nothing_can_be_skipped() -> None:
    short = live_window()
    assert "EXT-X-SKIP" not in render(short, skip=True)
    w = long_window()
    w.end()
    text = render(w, skip=True)
    assert "EXT-X-SKIP" not in text and not parse(text).skip


def test_multivariant() -> None:
    def rendition(name: str, **kw: object) -> Rendition:
        base: dict[str, object] = {
            "name": name,
            "window": make_window(),
            "bandwidth": 1_000_000,
            "average_bandwidth": None,
            "codecs": "avc1.64001f,mp4a.40.2",
            "resolution": (1280, 720),
            "frame_rate": 30.0,
        }
        base.update(kw)
        return Rendition(**base)  # type: ignore[arg-type]

    stream = HlsStream(
        "pb_x",
        [
            rendition(
                "source",
                bandwidth=5_000_000,
                average_bandwidth=4_000_000,
                resolution=(1920, 1080),
                frame_rate=29.97,
            ),
            rendition("480p", resolution=(854, 480), frame_rate=None),
            rendition(
                "audio",
                codecs="mp4a.40.2",
                resolution=None,
                frame_rate=None,
                audio_only=True,
                bandwidth=128_000,
            ),
        ],
    )
    text = render_multivariant(stream.renditions, player_id="pl_1", query="token=1")
    assert "FRAME-RATE=29.970" in text
    pl = parse(text)
    assert pl.is_variant
    got = [
        (
            p.uri,
            p.stream_info.bandwidth,
            p.stream_info.average_bandwidth,
            p.stream_info.codecs,
            p.stream_info.resolution,
        )
        for p in pl.playlists
    ]
    avc = "avc1.64001f,mp4a.40.2"
    assert got == [
        ("pl_1/source/index.m3u8?token=1", 5_000_000, 4_000_000, avc, (1920, 1080)),
        ("pl_1/480p/index.m3u8?token=1", 1_000_000, None, avc, (854, 480)),
        ("pl_1/audio/index.m3u8?token=1", 128_000, None, "mp4a.40.2", None),
    ]
    audio_line = text.splitlines()[-2]
    assert "RESOLUTION" not in audio_line and "FRAME-RATE" not in audio_line


def _approx(value: float) -> object:
    return pytest.approx(value, abs=1e-4)
