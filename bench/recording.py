"""Recording benchmarks: what recording costs a live stream, and how long finalising takes.

1. CPU: `live serve` receives a remuxed (passthrough) 720p30 3 Mbps H.264 + AAC
   stream from `ffmpeg -re -c copy`, once with `record: false` and once with
   `record: true`, alternating; the server's CPU time is read from /proc over the
   same steady-state window of each run (finalising comes after, and is reported
   on its own by part 2).
2. Finalising: an hour of 3 Mbps media (a 10 s clip repeated 360 times on a
   continuous clock) goes through the real packager and recorder (hub → packager's
   CMAF parts → recorder → whole segments and their manifests on local storage) as
   fast as it can, then
   `finalise_recording` writes the VOD playlist, the fast-start MP4 and the
   poster; both are timed.

    flock /tmp/live-heavy.lock .venv/bin/python bench/recording.py [--runs 2] [--minutes 60]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import LiveServer, Reaper, cpu_seconds, exit_on_sigterm
from media_fixtures import read_clip

from live.broadcast.hub import Hub
from live.hls import HlsRegistry
from live.packaging.packager import HlsPackager, PackagingSettings
from live.recording.finalize import finalise_recording
from live.recording.service import RecordingService
from live.storage import LocalStorage
from live.store import SqliteStore
from live.store.models import Session

STEADY_FROM_S, STEADY_TO_S = 3.0, 18.0


def make_source(directory: Path, seconds: int, size: str = "1280x720") -> Path:
    path = directory / f"source-{seconds}-{size}.flv"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
             "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-maxrate", "3M",
             "-bufsize", "3M", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(path)],
            check=True, timeout=300,
        )  # fmt: skip
    return path


# -- 1. CPU of recording --------------------------------------------------------------


def cpu_run(reaper: Reaper, server: LiveServer, source: Path, record: bool) -> float:
    stream = server.create_livestream(f"cpu-record-{record}", record=record)
    publisher = reaper.popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", str(source),
         "-c", "copy", "-f", "flv", server.rtmp_url(stream["stream_key"])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.monotonic()
    time.sleep(STEADY_FROM_S)
    before = cpu_seconds([server.pid])[server.pid]
    time.sleep(STEADY_TO_S - STEADY_FROM_S)
    after = cpu_seconds([server.pid])[server.pid]
    publisher.wait(60)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - started - STEADY_TO_S)))  # let it settle
    return (after - before) / (STEADY_TO_S - STEADY_FROM_S)


def bench_cpu(work: Path, runs: int) -> None:
    source = make_source(work, int(STEADY_TO_S) + 4)
    reaper = Reaper()
    try:
        server = LiveServer(reaper, work / "data")
        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(runs):
            for record in (False, True):
                results[record].append(cpu_run(reaper, server, source, record))
                time.sleep(4)  # the recording's finalisation, outside the next window
        plain = sum(results[False]) / runs
        recorded = sum(results[True]) / runs
        print("CPU of `live serve`, 720p30 3 Mbps passthrough (cores busy, mean of runs):")
        print(f"  record: false  {plain * 100:6.2f} %   runs {_percent(results[False])}")
        print(f"  record: true   {recorded * 100:6.2f} %   runs {_percent(results[True])}")
        print(
            f"  recording adds {(recorded - plain) * 100:+.2f} points of a core, "
            f"{(recorded / plain - 1) * 100:+.1f} % of the remuxed stream's CPU"
        )
    finally:
        reaper.end_all()


def _percent(values: list[float]) -> str:
    return ", ".join(f"{v * 100:.2f}" for v in values)


# -- 2. finalising an hour -------------------------------------------------------------


@dataclasses.dataclass
class _Broadcast:
    livestream: object
    session: Session
    hub: Hub
    packager: HlsPackager | None = None


async def record_hour(work: Path, minutes: int) -> tuple[LocalStorage, str, float, int]:
    clip = read_clip(make_source(work, 10))
    store = await SqliteStore.open(work / "db")
    storage = LocalStorage(work / "recordings")
    service = RecordingService(store, storage)
    service.finalise_later = lambda asset: None  # type: ignore[method-assign]  # timed below
    livestream = await store.create_livestream(name="hour")
    session = await store.create_session(Session(livestream_id=livestream.id, protocol="rtmp"))
    broadcast = _Broadcast(livestream, session, Hub())
    source = broadcast.hub.subscribe("hls", max_packets=3000)
    broadcast.packager = HlsPackager(
        source, HlsRegistry(), livestream.playback_id, PackagingSettings()
    )
    packaging = asyncio.create_task(broadcast.packager.run())
    task = asyncio.create_task(service.consumer(broadcast))  # type: ignore[arg-type]
    (recorder,) = service.recorders
    broadcast.hub.set_tracks(clip.tracks)
    started = time.perf_counter()
    packets = 0
    for repeat in range(minutes * 6):
        for packet in clip.packets:
            offset = round(repeat * 10 / packet.time_base)
            broadcast.hub.push(dataclasses.replace(packet, dts=packet.dts + offset,
                                                   pts=packet.pts + offset))  # fmt: skip
            packets += 1
            if packets % 200 == 0:
                await asyncio.sleep(0)
                while len(source) > 1000 or recorder.pending_parts > 100:  # never drop: pace
                    await asyncio.sleep(0.001)
    broadcast.hub.end("publisher_disconnected")
    await asyncio.gather(packaging, task)
    assert recorder.dropped_parts == 0
    elapsed = time.perf_counter() - started
    service_assets = await store.list_assets()
    asset = service_assets[0][0]
    await store.close()
    return storage, f"assets/{asset.id}/", elapsed, packets


def bench_finalise(work: Path, minutes: int) -> None:
    asyncio.run(_bench_finalise(work, minutes))


async def _bench_finalise(work: Path, minutes: int) -> None:
    storage, prefix, record_s, packets = await record_hour(work, minutes)
    stored = sum(info.size for info in await storage.list(prefix))
    print(
        f"Recording {minutes} min of 3 Mbps ({packets} packets, {stored / 1e9:.2f} GB stored)"
        f" through the recorder at full speed: {record_s:.1f} s"
    )
    started = time.perf_counter()
    result = await finalise_recording(storage, prefix)
    elapsed = time.perf_counter() - started
    mp4 = await storage.size(prefix + "download.mp4") or 0
    print(
        f"Finalising it ({result.segments} segments: playlist, {mp4 / 1e9:.2f} GB MP4, "
        f"poster): {elapsed:.1f} s for {result.duration_s / 60:.1f} min of media"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-finalise", action="store_true")
    args = parser.parse_args()
    exit_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    try:
        if not args.skip_cpu:
            bench_cpu(work, args.runs)
        if not args.skip_finalise:
            bench_finalise(work, args.minutes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
