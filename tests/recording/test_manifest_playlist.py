"""The pure parts of recording: manifests read back (with what a crash leaves) and the
VOD playlist text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from live.media.packet import TrackInfo
from live.recording import layout
from live.recording.manifest import (
    PartEntry,
    SegmentEntry,
    decode_segment,
    encode_init,
    encode_segment,
    load_index,
)
from live.recording.playlist import render_vod_playlist
from live.storage import LocalStorage

TRACK = TrackInfo(kind="video", codec="h264", extradata=b"\x01\x02", width=640, height=360,
                  codec_string="avc1.64001f")  # fmt: skip
PREFIX = "assets/ast_x/"


def segment(number: int, init: int, durations: list[float], discontinuity=False) -> SegmentEntry:
    parts = [PartEntry(d, 10 + n, n == 0) for n, d in enumerate(durations)]
    return SegmentEntry(number, init, discontinuity, parts, first_part=1 + 3 * (number - 1))


async def store_segment(storage, entry: SegmentEntry, manifest: bool = True) -> None:
    await storage.put(PREFIX + layout.segment_key(entry.number), b"m" * entry.size)
    if manifest:
        await storage.put(PREFIX + layout.segment_manifest_key(entry.number),
                          encode_segment(entry))  # fmt: skip


async def store_init(storage, number: int) -> None:
    await storage.put(PREFIX + layout.init_key(number), b"init")
    await storage.put(PREFIX + layout.init_manifest_key(number), encode_init(number, (TRACK,)))


def test_a_segment_manifest_round_trip():
    entry = segment(3, 1, [0.2, 0.2, 0.1333334], discontinuity=True)
    entry.media_start_s, entry.started_at = 8.4, "2026-12-02T03:00:00Z"
    data = encode_segment(entry)
    assert json.loads(data)["duration"] == round(entry.duration, 6)
    back = decode_segment(data)
    assert back.number == 3 and back.discontinuity and back.size == entry.size
    assert [p.independent for p in back.parts] == [True, False, False]
    assert back.media_start_s == 8.4 and back.started_at == "2026-12-02T03:00:00Z"


async def test_the_recording_is_the_manifests_that_exist(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    await store_init(storage, 1)
    for entry in (segment(1, 1, [0.2] * 3), segment(2, 1, [0.2] * 2, True)):
        await store_segment(storage, entry)
    # a crash between a segment and its manifest: the segment is left out
    await store_segment(storage, segment(3, 1, [0.2] * 3), manifest=False)
    # a segment cut short, and one of an init section that was never stored
    short = segment(4, 1, [0.2])
    await store_segment(storage, short)
    await storage.put(PREFIX + layout.segment_key(4), b"m")
    await store_segment(storage, segment(5, 2, [0.2]))
    # an unreadable manifest
    await storage.put(PREFIX + layout.segment_manifest_key(6), b'{"segment": 6, "par')
    index = await load_index(storage, PREFIX)
    assert index.inits == {1: (TRACK,)}
    assert [(s.number, s.discontinuity, len(s.parts)) for s in index.segments] == [
        (1, False, 3), (2, True, 2)]  # fmt: skip
    assert abs(index.duration - 1.0) < 1e-9
    assert index.orphans == [PREFIX + layout.segment_key(3)]
    # the recording ends at the hole: nothing after it is kept
    dropped = ["seg_00004.json", "seg_00004.m4s", "seg_00005.json", "seg_00005.m4s"]
    assert index.dropped == [PREFIX + name for name in [*dropped, "seg_00006.json"]]


@pytest.mark.parametrize("damage", ["missing", "empty", "short", "manifest"])
async def test_a_power_cut_hole_ends_the_recording_there(tmp_path: Path, damage: str):
    """Written without an fsync each, segment 2's bytes (or its manifest) did not
    reach the disk while segment 3's did: the recording is segment 1 alone."""
    storage = LocalStorage(tmp_path)
    await store_init(storage, 1)
    for number in (1, 2, 3):
        await store_segment(storage, segment(number, 1, [0.2] * 3))
    key = PREFIX + layout.segment_key(2)
    if damage == "missing":
        await storage.delete_many([key])
    elif damage == "manifest":
        await storage.delete_many([PREFIX + layout.segment_manifest_key(2)])
    else:
        await storage.put(key, b"" if damage == "empty" else b"m")
    index = await load_index(storage, PREFIX)
    assert [s.number for s in index.segments] == [1]
    kept = {PREFIX + name for name in ("init_1.mp4", "init_1.json", "seg_00001.json")}
    kept.add(PREFIX + layout.segment_key(1))
    everything = {info.key for info in await storage.list(PREFIX)}
    assert set(index.orphans) | set(index.dropped) == everything - kept


def test_vod_playlist():
    from live.recording.manifest import RecordingIndex

    index = RecordingIndex(inits={1: (TRACK,), 2: (TRACK,)})
    index.segments = [segment(1, 1, [2.26, 2.26]), segment(2, 1, [1.5]),
                      segment(3, 1, [1.5], True), segment(4, 2, [1.5], True)]  # fmt: skip
    text = render_vod_playlist(index)
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:5\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init_1.mp4"\n#EXTINF:4.52000,\nseg_00001.m4s\n'
        "#EXTINF:1.50000,\nseg_00002.m4s\n"
        "#EXT-X-DISCONTINUITY\n#EXTINF:1.50000,\nseg_00003.m4s\n"
        '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init_2.mp4"\n#EXTINF:1.50000,\nseg_00004.m4s\n'
        "#EXT-X-ENDLIST\n"
    )
