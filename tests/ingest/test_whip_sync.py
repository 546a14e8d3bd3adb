"""Audio/video timing from RTP timestamps and RTCP sender reports."""

from __future__ import annotations

import pytest

from live.ingest.whip.sync import MediaSync, RtpUnwrapper


def test_unwrapper_extends_across_the_32_bit_wrap_and_tolerates_reordering():
    unwrap = RtpUnwrapper()
    assert unwrap.extend(2**32 - 3000) == 2**32 - 3000
    assert unwrap.extend(1000) == 2**32 + 1000
    assert unwrap.extend(2**32 - 500) == 2**32 - 500  # late packet from before the wrap
    assert unwrap.extend(4000) == 2**32 + 4000
    assert unwrap.peek(2**32 - 100) == 2**32 - 100
    assert unwrap.extend(5000) == 2**32 + 5000


def test_sender_reports_line_up_tracks_with_different_offsets():
    sync = MediaSync({"video": 90000, "audio": 48000})
    # wall clock 1000.0 s is RTP 90_000_000 for video and 7_000 for audio
    sync.on_report("video", 1000.0, 90_000_000)
    assert sync.push("video", 90_000_000 + 9000, "v1", now_wall=5.0) == []  # audio not yet
    sync.on_report("audio", 1000.0, 7_000)
    out = sync.push("audio", 7_000 + 4800 + 960, "a1", now_wall=5.0)  # 0.12 s after 1000.0
    assert [(k, round(s, 6), i) for k, s, i in out] == [
        ("video", 0.0, "v1"),  # 1000.1: the earliest frame starts the timeline
        ("audio", 0.02, "a1"),
    ]
    later = sync.push("video", 90_000_000 + 18000, "v2", now_wall=5.1)
    assert later == [("video", pytest.approx(0.1), "v2")]


def test_without_reports_arrival_time_stands_in_after_the_wait():
    sync = MediaSync({"video": 90000, "audio": 48000}, report_wait_s=1.5)
    assert sync.push("video", 123, "v1", now_wall=10.0) == []
    assert sync.push("audio", 555, "a1", now_wall=10.2) == []
    assert sync.poll(11.0) == []
    out = sync.poll(11.8)
    assert [(k, round(s, 3)) for k, s, _ in out] == [("video", 0.0), ("audio", 0.2)]


def test_a_track_that_never_starts_does_not_hold_the_other_forever():
    sync = MediaSync({"video": 90000, "audio": 48000}, report_wait_s=1.5)
    sync.on_report("video", 50.0, 0)
    assert sync.push("video", 0, "v1", now_wall=1.0) == []
    assert [i for _, _, i in sync.poll(2.6)] == ["v1"]
    sync.on_report("audio", 50.5, 100)  # audio turns up later: still on the same timeline
    assert sync.push("audio", 100, "a1", now_wall=3.0) == [("audio", 0.5, "a1")]
