"""Ladder throughput: can this machine make 480p + 360p from 720p30 in real time?

Two measurements, both in-process on the real codec path (`LadderEncoder`: one
decode of the source, scale, libx264 per rung):

1. Throughput: a 720p30 H.264 clip fed as fast as the codecs take it. The
   realtime factor is media seconds per wall second (goal: >= 1.2); CPU seconds
   per media second come from the process's own CPU time. Run once per rung alone
   and once with the whole ladder, so each rendition's cost shows.
2. Paced: the same clip fed at 30 fps through `Ladder` (worker thread, windows)
   for --minutes; reports the added latency (source part handed over -> rung part
   in its window), p50/p90/max, and whether it grows (first vs last minute), and
   whether any rung was shed.

    .venv/bin/python bench/ladder.py [--minutes 5] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from media_fixtures import read_clip  # noqa: E402

from live.hls import HlsWindow  # noqa: E402
from live.ladder import ladder as ladder_module  # noqa: E402
from live.ladder.encode import LadderEncoder, SegmentStart, SourcePart, SourceTracks  # noqa: E402
from live.ladder.plan import Rung  # noqa: E402
from live.media.timeline import Timeline  # noqa: E402
from live.packaging.fmp4 import track_timescale  # noqa: E402

RUNGS = [Rung("480p", 854, 480, 1_200_000), Rung("360p", 640, 360, 700_000)]


def make_source(directory: Path, seconds: int) -> Path:
    path = directory / f"source-720p30-{seconds}s.flv"
    if not path.exists():
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=sample_rate=48000",
                "-t",
                str(seconds),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-b:v",
                "3M",
                "-g",
                "30",
                "-keyint_min",
                "30",
                "-sc_threshold",
                "0",
                "-bf",
                "0",
                "-c:a",
                "aac",
                "-f",
                "flv",
                str(path),
            ],
            check=True,
            timeout=600,
        )
    return path


def parts_of(clip):
    """The clip as the source packager would hand it over: 6-frame parts, a segment
    every 30 frames."""
    timeline = Timeline({t.kind: track_timescale(t) for t in clip.tracks})
    samples = [s for p in clip.packets if (s := timeline.push(p)) is not None]
    samples += timeline.flush()
    video = [s for s in samples if s.packet.kind == "video"]
    start = next(i for i, s in enumerate(video) if s.packet.keyframe)
    video = video[start:]
    items = []
    for index in range(0, len(video), 6):
        chunk = video[index : index + 6]
        if index % 30 == 0:
            items.append(SegmentStart(False, datetime.now(UTC)))
        items.append(SourcePart(tuple(chunk), chunk[-1].dts + chunk[-1].duration, index % 30 == 0))
    return items


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(clip, items, rungs, media_seconds: float) -> tuple[float, float]:
    encoder = LadderEncoder(rungs)
    encoder.process(SourceTracks(clip.tracks))
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    for item in items:
        encoder.process(item)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    return media_seconds / wall, cpu / media_seconds


async def paced(clip, items, minutes: float) -> dict[str, object]:
    window = HlsWindow(target_duration=1, part_target=0.204, window_segments=7)
    ladder = ladder_module.Ladder(
        RUNGS, source_window=window, stream=lambda: None, frame_rate=lambda: 30.0, on_warning=print
    )
    handed: dict[int, float] = {}
    latencies: list[tuple[float, float]] = []
    original = ladder._add_part

    def timed_add_part(output, part):
        original(output, part)
        video = [s for s in part.samples if s.packet.kind == "video"]
        if video and output.rung.name == "360p" and video[0].dts in handed:
            latencies.append((time.monotonic(), time.monotonic() - handed[video[0].dts]))

    ladder._add_part = timed_add_part
    ladder.on_tracks(clip.tracks)
    started = time.monotonic()
    media_time = 0.0
    loop_offset = 0
    span = items[-1].end - next(i for i in items if isinstance(i, SourcePart)).samples[0].dts
    while time.monotonic() - started < minutes * 60:
        for item in items:
            if isinstance(item, SegmentStart):
                ladder.on_segment(item.discontinuity, item.program_date_time)
                continue
            shifted = [
                s.__class__(s.packet, s.dts + loop_offset, s.pts + loop_offset, s.duration)
                for s in item.samples
            ]
            handed[shifted[0].dts] = time.monotonic()
            ladder.on_part(shifted, item.end + loop_offset, item.independent)
            media_time += 0.2
            delay = started + media_time - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() - started >= minutes * 60:
                break
        loop_offset += span
    ladder.on_end()
    await ladder.close()
    values = [latency for _, latency in latencies]
    first = [v for t, v in latencies if t - started < 60]
    last = [v for t, v in latencies if t - started > minutes * 60 - 60]
    return {
        "parts": len(values),
        "p50_ms": statistics.median(values) * 1000,
        "p90_ms": statistics.quantiles(values, n=10)[-1] * 1000,
        "max_ms": max(values) * 1000,
        "first_minute_p50_ms": statistics.median(first) * 1000 if first else None,
        "last_minute_p50_ms": statistics.median(last) * 1000 if last else None,
        "shed": list(ladder.shed),
        "worker_busy_share": ladder.busy_s / (time.monotonic() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the source clip")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the paced run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        clip = read_clip(make_source(Path(directory), args.seconds))
    items = parts_of(clip)
    media = clip.frames / 30
    print(f"source: 1280x720 30 fps H.264, {media:.0f} s, {len(items)} items")
    print(f"{'rungs':<16}{'realtime x':>12}{'CPU s per media s':>20}")
    for rungs in ([RUNGS[0]], [RUNGS[1]], RUNGS):
        factor, cpu = throughput(clip, items, rungs, media)
        print(f"{'+'.join(r.name for r in rungs):<16}{factor:>12.2f}{cpu:>20.2f}")
    if args.minutes > 0:
        result = asyncio.run(paced(clip, items, args.minutes))
        print(
            f"paced {args.minutes:g} min, 480p+360p: "
            + ", ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
            )
        )


if __name__ == "__main__":
    main()
