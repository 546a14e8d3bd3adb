"""The pure parts of recording: the index format (torn lines) and the VOD playlist text."""

from __future__ import annotations

from live.media.packet import TrackInfo
from live.recording import index as idx
from live.recording.playlist import render_vod_playlist

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
