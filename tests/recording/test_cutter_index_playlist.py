"""The pure parts of recording: where parts and segments begin, the index format
(torn lines), and the VOD playlist text."""

from __future__ import annotations

from live.media.packet import TrackInfo
from live.recording import index as idx
from live.recording.cutter import RecordingCutter
from live.recording.playlist import render_vod_playlist

FRAME = 1 / 30


def feed(cutter: RecordingCutter, frames: int, gop: int, start: int = 0):
    parts = []
    for number in range(start, start + frames):
        parts += cutter.add(("v", number), FRAME, number % gop == 0)
        parts += cutter.add(("a", number), 0.0, False)
    return parts


def test_parts_and_segments_follow_time_and_keyframes():
    cutter = RecordingCutter(part_target=0.2, segment_target=2.0, has_video=True)
    parts = feed(cutter, 120, gop=30) + cutter.flush()
    assert [len([i for i in p.items if i[0] == "v"]) for p in parts] == [6] * 20
    assert all(abs(p.duration - 0.2) < 1e-9 for p in parts)
    starts = [p.segment for p in parts if p.segment_start]
    assert starts == [1, 2]  # 2 s segments, each on a keyframe
    first_of_segment_2 = next(p for p in parts if p.segment == 2)
    assert first_of_segment_2.items[0] == ("v", 60)
    assert not any(p.discontinuity for p in parts)


def test_nothing_before_the_first_keyframe_and_long_gops_make_long_segments():
    cutter = RecordingCutter(part_target=0.2, segment_target=1.0, has_video=True)
    parts = feed(cutter, 110, gop=90, start=80) + cutter.flush()
    assert parts[0].items[0] == ("v", 90)  # frames 80..89 cannot be decoded
    assert cutter.dropped == 20  # ten frames and their audio
    assert {p.segment for p in parts} == {1, 2}  # cut at the keyframe at 180


def test_a_source_break_starts_a_segment_with_a_discontinuity():
    cutter = RecordingCutter(part_target=0.2, segment_target=2.0, has_video=True)
    parts = feed(cutter, 10, gop=30)
    parts += cutter.break_source()
    assert parts[-1].items[-1] == ("a", 9)  # the short part in progress is kept
    parts += feed(cutter, 3, gop=30, start=5)  # no keyframe yet: dropped
    parts += feed(cutter, 10, gop=30, start=30) + cutter.flush()
    after = [p for p in parts if p.segment == 2]
    assert after[0].segment_start and after[0].discontinuity
    assert after[0].items[0] == ("v", 30)
    assert not any(p.discontinuity for p in parts if p.segment == 1)


def test_audio_only_cuts_on_time():
    cutter = RecordingCutter(part_target=0.2, segment_target=1.0, has_video=False)
    parts = []
    for number in range(100):
        parts += cutter.add(number, 1024 / 48000, False)
    parts += cutter.flush()
    assert parts[0].items[0] == 0  # no keyframe needed
    assert max(p.segment for p in parts) == 3


TRACK = TrackInfo(kind="video", codec="h264", extradata=b"\x01\x02", width=640, height=360,
                  codec_string="avc1.64001f")  # fmt: skip


def test_index_round_trip_and_torn_last_line():
    data = idx.init_line(1, (TRACK,))
    for seq in range(1, 6):
        data += idx.part_line(seq, 1 + (seq > 3), 1, 0.2, 100 + seq, seq == 4)
    data += idx.end_line("publisher_disconnected")
    index = idx.parse_index(data)
    assert index.inits == {1: (TRACK,)}
    assert [(s.number, s.discontinuity, len(s.parts)) for s in index.segments] == [
        (1, False, 3), (2, True, 2)]  # fmt: skip
    assert abs(index.duration - 1.0) < 1e-9 and index.segments[1].size == 209
    assert index.end_reason == "publisher_disconnected"
    torn = idx.parse_index(data[: data.rindex(b'{"type":"part"') + 30])
    assert torn.torn_lines == 1 and sum(len(s.parts) for s in torn.segments) == 4
    assert torn.end_reason is None


def test_parts_of_an_unknown_init_are_dropped():
    data = idx.part_line(1, 1, 7, 0.2, 10, False) + idx.init_line(1, (TRACK,))
    assert idx.parse_index(data).segments == []


def test_vod_playlist():
    data = idx.init_line(1, (TRACK,)) + idx.init_line(2, (TRACK,))
    for seq, (segment, init, disc) in enumerate(
        [(1, 1, False), (1, 1, False), (2, 1, False), (3, 1, True), (4, 2, True)], start=1
    ):
        data += idx.part_line(seq, segment, init, 2.26 if segment == 1 else 1.5, 10, disc)
    text = render_vod_playlist(idx.parse_index(data))
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:5\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init_1.mp4"\n#EXTINF:4.52000,\nseg_00001.m4s\n'
        "#EXTINF:1.50000,\nseg_00002.m4s\n"
        "#EXT-X-DISCONTINUITY\n#EXTINF:1.50000,\nseg_00003.m4s\n"
        '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init_2.mp4"\n#EXTINF:1.50000,\nseg_00004.m4s\n'
        "#EXT-X-ENDLIST\n"
    )
