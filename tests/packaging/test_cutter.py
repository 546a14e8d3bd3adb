import pytest

from live.packaging.cutter import PartCutter, plan_timing

FRAME = 1 / 30


class Sink:
    def __init__(self):
        self.events = []

    def set_init(self, data):
        self.events.append(("init", data))

    def start_segment(self, *, discontinuity=False):
        self.events.append(("segment", discontinuity))

    def add_part(self, items, duration, independent):
        self.events.append(("part", b"".join(items), round(duration, 6), independent))

    def segments(self):
        """[[part durations] per segment]"""
        out = []
        for event in self.events:
            if event[0] == "segment":
                out.append([])
            elif event[0] == "part":
                out[-1].append(event)
        return out


def feed(cutter, frames, gop):
    for index in range(frames):
        cutter.add(bytes([index % 256]), FRAME, index % gop == 0)


def test_timing_for_30fps_one_second_gop():
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=1.0
    )
    assert timing.target_duration == 1
    assert 0.2 <= timing.part_target <= 0.21
    # 6 frames fit, 7 do not: parts are never shorter than 85% of the target
    assert 6 * FRAME <= timing.part_target < 7 * FRAME
    assert 0.85 * timing.part_target <= 6 * FRAME


@pytest.mark.parametrize(("interval", "expected_td"), [(0.5, 1), (1.0, 1), (2.0, 2), (8.33, 8)])
def test_target_duration_covers_the_keyframe_interval(interval, expected_td):
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=interval
    )
    assert timing.target_duration == expected_td


def test_parts_and_segments_at_30fps():
    sink = Sink()
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=1.0
    )
    cutter = PartCutter(sink, timing, has_video=True)
    cutter.new_init(b"init", discontinuity=False)
    feed(cutter, 90, gop=30)
    cutter.flush_part()
    segments = sink.segments()
    assert len(segments) == 3
    for parts in segments:
        assert [p[2] for p in parts] == [pytest.approx(0.2)] * 5
        assert [p[3] for p in parts] == [True, False, False, False, False]
    assert sink.events[0] == ("init", b"init")


def test_nothing_before_the_first_keyframe_and_no_part_exceeds_target():
    sink = Sink()
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=1 / 24, keyframe_interval=1.0
    )
    cutter = PartCutter(sink, timing, has_video=True)
    cutter.new_init(b"i", discontinuity=False)
    for _ in range(5):
        cutter.add(b"x", 1 / 24, False)  # joined mid-GOP: dropped
    for index in range(72):
        cutter.add(b"y", 1 / 24, index % 24 == 0)
    parts = [e for e in sink.events if e[0] == "part"]
    assert all(b"x" not in p[1] for p in parts)
    for part in parts:
        assert part[2] <= timing.part_target + 1e-9
    # all but the last part of each segment respect the 85% rule
    for segment in sink.segments():
        for part in segment[:-1]:
            assert part[2] >= 0.85 * timing.part_target


def test_long_gop_forces_a_cut_at_the_target_duration_and_warns():
    sink = Sink()
    warnings = []
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=1.0
    )
    cutter = PartCutter(sink, timing, has_video=True, on_forced_cut=warnings.append)
    cutter.new_init(b"i", discontinuity=False)
    feed(cutter, 150, gop=150)  # one keyframe in 5 s
    cutter.flush_part()
    segments = sink.segments()
    assert len(segments) > 1
    for parts in segments:
        total = sum(p[2] for p in parts)
        assert round(total) <= timing.target_duration
    assert warnings
    assert segments[1][0][3] is False  # the forced segment does not start independent


def test_new_init_starts_a_discontinuous_segment():
    sink = Sink()
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=1.0
    )
    cutter = PartCutter(sink, timing, has_video=True)
    cutter.new_init(b"a", discontinuity=False)
    feed(cutter, 20, gop=30)
    cutter.new_init(b"b", discontinuity=True)
    feed(cutter, 10, gop=30)
    kinds = [e[0] if e[0] != "segment" else ("segment", e[1]) for e in sink.events]
    index = kinds.index("init", 1)
    assert kinds[index + 1] == ("segment", True)


def test_audio_only_parts_are_all_independent():
    sink = Sink()
    frame = 1024 / 48000
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=frame, keyframe_interval=0
    )
    cutter = PartCutter(sink, timing, has_video=False)
    cutter.new_init(b"a", discontinuity=False)
    for _ in range(200):
        cutter.add(b"s", frame, False)
    parts = [e for e in sink.events if e[0] == "part"]
    assert parts and all(p[3] for p in parts)
    assert len(sink.segments()) >= 4


def test_a_late_frame_starts_a_new_part_instead_of_overflowing_one():
    sink = Sink()
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=1.0
    )
    cutter = PartCutter(sink, timing, has_video=True)
    cutter.new_init(b"i", discontinuity=False)
    durations = [FRAME] * 5 + [0.05] + [FRAME] * 24  # the sixth frame came late
    for index, duration in enumerate(durations):
        cutter.add(b"f", duration, index == 0)
    cutter.flush_part()
    parts = [e for e in sink.events if e[0] == "part"]
    assert all(p[2] <= timing.part_target + 1e-9 for p in parts)
    assert parts[0][2] == pytest.approx(5 * FRAME, abs=1e-5)


# x264enc tune=zerolatency key-int-max=30 at 30 fps (GStreamer): a keyframe every
# 11 to 13 frames (0.37-0.43 s), wobbling.
WOBBLY_GOPS = [12, 11, 13, 12, 13, 11, 11, 13, 12, 12, 13, 11, 12, 11, 13, 13, 11, 12] * 3


def _feed_gops(cutter, gops):
    frames = []
    for gop in gops:
        for index in range(gop):
            item = len(frames).to_bytes(2, "big")
            frames.append(item)
            cutter.add(item, FRAME, index == 0)
    cutter.flush_part()
    return frames


def test_frequent_keyframes_close_segments_at_the_keyframe_nearest_the_target():
    sink, forced = Sink(), []
    first_interval = WOBBLY_GOPS[0] * FRAME
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME,
        keyframe_interval=first_interval,
    )  # fmt: skip
    assert timing.target_duration == 1
    cutter = PartCutter(sink, timing, has_video=True, on_forced_cut=forced.append)
    cutter.new_init(b"i", discontinuity=False)
    frames = _feed_gops(cutter, WOBBLY_GOPS)
    segments = sink.segments()
    # every frame is there once, in order, byte for byte
    assert b"".join(p[1] for parts in segments for p in parts) == b"".join(frames)
    assert forced == []  # never cut without a keyframe
    keyframes, at = set(), 0
    for gop in WOBBLY_GOPS:
        keyframes.add(at)
        at += gop
    start = 0
    lengths = []
    for parts in segments:
        assert start in keyframes and parts[0][3] is True  # begins on a keyframe
        frames_in_segment = sum(len(p[1]) // 2 for p in parts)
        lengths.append(frames_in_segment)
        start += frames_in_segment
    # two GOPs each (23 to 26 frames: 0.77-0.87 s), the keyframes nearest 1 s: three
    # would be 1.13-1.3 s; the old rule (whole intervals from the first one, then the
    # first keyframe past them) made 1.2-1.47 s and once cut without a keyframe
    assert all(0.75 < n * FRAME < 1.2 for n in lengths[:-1]), lengths
    assert lengths == [23, 25, 24, 24, 24, 24, 23, 26, 23] * 3, lengths


def test_keyframes_rarer_than_the_target_make_one_interval_segments():
    sink = Sink()
    timing = plan_timing(
        part_target=0.2, segment_target=1.0, frame_duration=FRAME, keyframe_interval=2.0
    )
    cutter = PartCutter(sink, timing, has_video=True)
    cutter.new_init(b"i", discontinuity=False)
    _feed_gops(cutter, [60] * 4)
    assert [round(sum(p[2] for p in parts), 3) for parts in sink.segments()] == [2.0] * 4
