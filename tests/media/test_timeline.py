import itertools
from fractions import Fraction

from live.media.packet import MediaPacket
from live.media.timeline import START_OFFSET_S, Timeline

MS = Fraction(1, 1000)


def video(dts, pts=None, key=False):
    return MediaPacket("video", dts, dts if pts is None else pts, b"v", key, MS)


def audio(dts):
    return MediaPacket("audio", dts, dts, b"a", True, MS)


def run(timeline, packets):
    out = [s for p in packets if (s := timeline.push(p)) is not None]
    return out + timeline.flush()


def test_durations_come_from_the_next_sample_and_start_at_the_offset():
    timeline = Timeline({"video": 90_000})
    samples = run(timeline, [video(5000, key=True), video(5033), video(5067), video(5100)])
    assert [s.dts for s in samples] == [900_000, 902_970, 906_030, 909_000]
    assert [s.duration for s in samples] == [2970, 3060, 2970, 2970]  # last repeats
    assert samples[0].dts == round(START_OFFSET_S * 90_000)


def test_composition_offsets_survive_and_b_frames_keep_pts_order():
    timeline = Timeline({"video": 90_000})
    samples = run(timeline, [video(0, 67, True), video(33, 133), video(67, 100)])
    assert [s.pts - s.dts for s in samples] == [6030, 9000, 2970]


def test_backwards_step_is_clamped_never_repeated():
    timeline = Timeline({"audio": 48_000})
    samples = run(timeline, [audio(100), audio(121), audio(121), audio(120), audio(163)])
    dts = [s.dts for s in samples]
    assert all(b > a for a, b in itertools.pairwise(dts))


def test_clock_reset_continues_the_timeline():
    timeline = Timeline({"video": 90_000})
    first = run(timeline, [video(60_000, key=True), video(60_033)])
    timeline.reanchor()
    second = run(timeline, [video(0, key=True), video(33)])
    assert second[0].dts >= first[-1].dts + first[-1].duration
    assert second[0].dts - (first[-1].dts + first[-1].duration) < 90_000


def test_jump_inside_one_publisher_is_smoothed():
    timeline = Timeline({"video": 90_000})
    samples = run(timeline, [video(0, key=True), video(33), video(3_600_000), video(3_600_033)])
    steps = [b.dts - a.dts for a, b in itertools.pairwise(samples)]
    assert max(steps) < 90_000
    assert timeline.jumps == 1


def test_tracks_share_one_origin():
    timeline = Timeline({"video": 90_000, "audio": 48_000})
    out = run(timeline, [video(1000, key=True), audio(1010), video(1033), audio(1031)])
    v = next(s for s in out if s.packet.kind == "video")
    a = next(s for s in out if s.packet.kind == "audio")
    assert abs(a.dts / 48_000 - v.dts / 90_000 - 0.010) < 0.001
