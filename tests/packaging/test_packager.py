"""The packager with the real hub and HLS window, on real encoded media."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import subprocess
from fractions import Fraction

from media_fixtures import make_clip

from live.broadcast.hub import Hub
from live.hls import HlsRegistry
from live.hls.spool import HlsSpool
from live.packaging.bmff import iter_boxes, parse_moof, read_track_defaults
from live.packaging.packager import HlsPackager, PackagingSettings


async def package(*steps, settings: PackagingSettings | None = None, spill=None):
    """Run a packager over (tracks, packets) steps; 'publisher' marks a new publisher."""
    hub = Hub()
    registry = HlsRegistry()
    warnings: list[str] = []
    packager = HlsPackager(
        hub.subscribe("hls"),
        registry,
        "pb_test",
        settings or PackagingSettings(),
        on_warning=warnings.append,
        spill=spill,
    )
    task = asyncio.create_task(packager.run())
    for step in steps:
        if step == "publisher":
            hub.publisher_changed()
            continue
        tracks, packets = step
        hub.set_tracks(tracks)
        for packet in packets:
            hub.push(packet)
        await asyncio.sleep(0)
    hub.end("publisher_disconnected")
    await asyncio.wait_for(task, 10)
    return packager, warnings


def segments_bytes(window, snapshot):
    """init + every listed segment's bytes, per init section in order."""
    out, current = [], None
    for segment in snapshot.segments:
        if segment.init_id != current:
            current = segment.init_id
            out.append(bytearray(window.init_data(current)))
        out[-1] += window.segment_data(segment.msn)
    return [bytes(b) for b in out]


def frames_in(data: bytes, tmp_path, name: str) -> int:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return int(out.strip())


async def test_every_frame_is_packaged_and_segments_start_on_keyframes(clip, tmp_path):
    packager, warnings = await package((clip.tracks, clip.packets))
    window = packager.window
    snapshot = window.snapshot()
    assert snapshot.ended and window.target_duration == 1
    assert not warnings
    assert all(s.parts[0].independent for s in snapshot.segments if s.parts)
    (data,) = segments_bytes(window, snapshot)
    assert frames_in(data, tmp_path, "all.mp4") == clip.frames
    rendition = packager.rendition
    assert rendition.resolution == (320, 180)
    assert rendition.codecs.startswith("avc1.") and rendition.codecs.endswith(",mp4a.40.2")
    assert 29 < rendition.frame_rate < 31


async def test_segments_that_left_the_playlist_are_spooled_and_freed_on_close(media_dir, tmp_path):
    clip = make_clip(media_dir, seconds=12.0)
    spool = HlsSpool.open(tmp_path)
    settings = PackagingSettings(window_segments=3)
    packager, _ = await package((clip.tracks, clip.packets), settings=settings, spill=spool.spill)
    window = packager.window
    snapshot = window.snapshot()
    first = snapshot.segments[0].msn
    spilled = [msn for msn in range(window.first_msn, first) if window.is_spilled(msn)]
    assert spilled and sorted(int(p.stem) for p in spool.root.glob("*/*.m4s")) == spilled
    # The spilled segments and the listed ones are still the whole stream's tail.
    data = bytearray(window.init_data(snapshot.segments[0].init_id))
    for msn in range(spilled[0], snapshot.segments[-1].msn + 1):
        data += window.segment_data(msn)
    assert frames_in(bytes(data), tmp_path, "tail.mp4") > 30 * (len(spilled) + 3) - 5
    packager.close_windows()
    assert list(spool.root.iterdir()) == []
    assert window.segment_data(spilled[0]) is None


async def test_a_stream_that_ends_before_its_second_keyframe_is_still_packaged(clip, tmp_path):
    first_gop, keyframes = [], 0
    for packet in clip.packets:
        keyframes += packet.kind == "video" and packet.keyframe
        if keyframes == 2:
            break
        first_gop.append(packet)
    frames = sum(p.kind == "video" for p in first_gop)
    packager, _ = await package((clip.tracks, first_gop))
    snapshot = packager.window.snapshot()
    assert snapshot.ended and snapshot.segments
    (data,) = segments_bytes(packager.window, snapshot)
    assert frames == 30 and frames_in(data, tmp_path, "short.mp4") == frames


async def test_a_changed_resolution_gives_a_new_init_and_a_discontinuity(media_dir, tmp_path):
    small = make_clip(media_dir, size="320x180", seconds=3)
    large = make_clip(media_dir, size="640x360", seconds=3)
    shift = 3000  # the publisher's clock goes on across the change
    moved = [
        type(p)(
            p.kind,
            p.dts + shift * p.time_base.denominator // 1000,
            p.pts + shift * p.time_base.denominator // 1000,
            p.data,
            p.keyframe,
            p.time_base,
        )
        for p in large.packets
    ]
    packager, _ = await package((small.tracks, small.packets), (large.tracks, moved))
    snapshot = packager.window.snapshot()
    init_ids = sorted({s.init_id for s in snapshot.segments})
    assert len(init_ids) == 2
    first_of_new = next(s for s in snapshot.segments if s.init_id == init_ids[1])
    assert first_of_new.discontinuity
    first, second = segments_bytes(packager.window, snapshot)
    assert frames_in(first, tmp_path, "a.mp4") == small.frames
    assert frames_in(second, tmp_path, "b.mp4") == large.frames
    assert packager.rendition.resolution == (640, 360)


async def test_a_new_publisher_restarting_its_clock_continues_the_timeline(clip):
    packager, _ = await package(
        (clip.tracks, clip.packets), "publisher", (clip.tracks, clip.packets)
    )
    window = packager.window
    snapshot = window.snapshot()
    assert sum(s.discontinuity for s in snapshot.segments) == 1
    defaults, _ = read_track_defaults(window.init_data(snapshot.segments[0].init_id))
    video_times = []
    for segment in snapshot.segments:
        data = window.segment_data(segment.msn)
        for box_type, start, _, end in iter_boxes(data):
            if box_type == b"moof":
                run = parse_moof(data[start:end], defaults).get(1)
                if run:
                    video_times.append((run.base_decode_time, run.duration))
    for (start, duration), (next_start, _) in itertools.pairwise(video_times):
        assert next_start >= start + duration  # never backwards, across the new publisher


async def test_a_long_keyframe_interval_warns_and_sets_the_target_duration(media_dir):
    clip = make_clip(media_dir, gop=90, seconds=7)  # a 3 s GOP at 30 fps
    packager, warnings = await package((clip.tracks, clip.packets))
    assert packager.window.target_duration == 3
    assert any("keyframe interval is 3.0 s" in w.lower() for w in warnings)
    for segment in packager.window.snapshot().segments:
        assert round(segment.duration) <= 3


async def _package_one_by_one(packets, tracks, on_packet=None):
    """Push each packet only once the packager has drained its queue: every packet
    after the first is packaged inline, inside `hub.push`."""
    hub = Hub()
    packager = HlsPackager(hub.subscribe("hls"), HlsRegistry(), "pb_inline", PackagingSettings())
    if on_packet is not None:
        packager._on_packet = on_packet(packager._on_packet)
    task = asyncio.create_task(packager.run())
    hub.set_tracks(tracks)
    await asyncio.sleep(0)
    packager.queued_after_push = []
    for packet in packets:
        hub.push(packet)
        packager.queued_after_push.append(len(packager.subscription))
        await asyncio.sleep(0)
        if task.done():
            break
    hub.end("publisher_disconnected")
    return packager, task


async def test_packets_packaged_inline_give_the_same_bytes_as_queued_ones(clip):
    queued, _ = await package((clip.tracks, clip.packets))
    inline, task = await _package_one_by_one(clip.packets, clip.tracks)
    await asyncio.wait_for(task, 10)
    assert not any(inline.queued_after_push)  # each packet was packaged inside push
    for packager in (queued, inline):
        assert packager.window.snapshot().ended
    assert segments_bytes(inline.window, inline.window.snapshot()) == segments_bytes(
        queued.window, queued.window.snapshot()
    )


async def test_a_packet_that_fails_inline_fails_the_packager_not_the_publisher(clip):
    def failing_after(count):
        def wrap(on_packet):
            seen = itertools.count()

            def handle(packet):
                if next(seen) == count:
                    raise ValueError("broken packet")
                on_packet(packet)

            return handle

        return wrap

    packager, task = await _package_one_by_one(clip.packets, clip.tracks, failing_after(40))
    # hub.push returned normally for every packet; the packager's task carries the error
    try:
        await asyncio.wait_for(task, 10)
    except ValueError as error:
        assert str(error) == "broken packet"
    else:
        raise AssertionError("the packager should have failed")
    assert packager.window is not None and packager.window.snapshot().ended


async def test_a_30_fps_source_with_millisecond_timestamps_is_30_fps(clip):
    """RTMP's millisecond timestamps (33, 33, 34 ms) must not make FRAME-RATE=30.048."""
    as_flv = [
        dataclasses.replace(
            p, dts=round(p.dts_seconds * 1000), pts=round(p.pts_seconds * 1000),
            time_base=Fraction(1, 1000),
        )
        for p in clip.packets
    ]  # fmt: skip
    packager, _ = await package((clip.tracks, as_flv))
    assert packager.rendition.frame_rate == 30.0
