"""The ladder on real encoded media, with the real packager and windows."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from media_fixtures import make_clip

from live.broadcast.hub import Hub
from live.hls import HlsRegistry
from live.ladder.ladder import Ladder
from live.ladder.plan import parse_rungs, plan_ladder
from live.packaging.packager import HlsPackager, PackagingSettings


def test_plan_keeps_rungs_strictly_below_the_source_and_its_aspect():
    rungs = parse_rungs("1080:6000,720:3000,480:1200,360:700")
    assert [r.name for r in plan_ladder(1280, 720, rungs)] == ["480p", "360p"]
    planned = plan_ladder(1280, 720, rungs)
    assert (planned[0].width, planned[0].height, planned[0].bitrate) == (854, 480, 1_200_000)
    assert (planned[1].width, planned[1].height) == (640, 360)
    assert [r.name for r in plan_ladder(1920, 1080, rungs)] == ["720p", "480p", "360p"]
    assert plan_ladder(640, 360, rungs) == []
    vertical = plan_ladder(1080, 1920, rungs)
    assert vertical[0].height == 1080 and vertical[0].width == 608
    for bad in ("720", "720:x", "1:100", "720:0"):
        with pytest.raises(ValueError):
            parse_rungs(bad)


async def run_ladder(clip, rungs_text):
    hub = Hub()
    registry = HlsRegistry()
    warnings: list[str] = []

    def make(packager):
        video = next(t for t in packager.tracks if t.kind == "video")
        return Ladder(
            plan_ladder(video.width, video.height, parse_rungs(rungs_text)),
            source_window=packager.window,
            stream=lambda: packager.stream,
            frame_rate=lambda: 30.0,
            on_warning=warnings.append,
        )

    packager = HlsPackager(
        hub.subscribe("hls"), registry, "pb_ladder", PackagingSettings(), ladder=make
    )
    task = asyncio.create_task(packager.run())
    hub.set_tracks(clip.tracks)
    for packet in clip.packets:
        hub.push(packet)
        await asyncio.sleep(0)
    hub.end("publisher_disconnected")
    await asyncio.wait_for(task, 60)
    return packager, warnings


def probe(data: bytes, tmp_path, name: str) -> tuple[int, int, int]:
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
            "stream=width,height,nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    width, height, frames = out.split(",")
    return int(width), int(height), int(frames)


@pytest.mark.parametrize("bframes", [0, 2], ids=["ipp", "bframes"])
async def test_rungs_line_up_with_the_source_and_hold_every_frame(media_dir, tmp_path, bframes):
    clip = make_clip(media_dir, size="640x360", seconds=4, bframes=bframes)
    packager, warnings = await run_ladder(clip, "240:300,180:200")
    assert not warnings
    stream = packager.stream
    names = [r.name for r in stream.renditions]
    assert names == ["source", "240p", "180p"]
    source = packager.window.snapshot()
    for rendition in stream.renditions[1:]:
        rung = rendition.window.snapshot()
        assert rung.ended
        assert [s.msn for s in rung.segments] == [s.msn for s in source.segments]
        assert rendition.window.target_duration == packager.window.target_duration
        for ours, theirs in zip(rung.segments, source.segments, strict=True):
            assert abs(ours.duration - theirs.duration) <= 1 / 30 + 1e-6
            if ours.parts is not None and theirs.parts is not None:
                assert [p.index for p in ours.parts] == [p.index for p in theirs.parts]
                assert ours.parts[0].independent
        data = rendition.window.init_data(rung.segments[0].init_id)
        data += b"".join(rendition.window.segment_data(s.msn) for s in rung.segments)
        width, height, frames = probe(data, tmp_path, f"{rendition.name}.mp4")
        assert (width, height) == rendition.resolution
        assert height == int(rendition.name[:-1])
        assert frames == clip.frames
        assert rendition.codecs.startswith("avc1.") and rendition.codecs.endswith("mp4a.40.2")
