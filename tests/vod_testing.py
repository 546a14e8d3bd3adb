"""Shared by the VOD tests: synthetic sources made with the ffmpeg CLI, an asset put
in storage as the upload side leaves it (`pending`, its file at `source`), a job
runner on a real store and storage, and what ffmpeg and ffprobe say of the result."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import av

from live.ladder.plan import DEFAULT_RUNGS, parse_rungs
from live.recording import layout
from live.storage.base import Storage
from live.storage.files import read_file_chunks
from live.store.base import Store
from live.store.models import Asset
from live.vod.jobs import JobSettings, VodJobs
from live.vod.pipeline import PipelineSettings

FPS = 30


def make_source(
    path: Path,
    seconds: float,
    *,
    size: str = "1280x720",
    video: bool = True,
    audio: bool = True,
    container_args: tuple[str, ...] = (),
) -> Path:
    """testsrc2 (a picture that changes every frame) and a tone, H.264/AAC, 1 s GOPs."""
    command = ["ffmpeg", "-v", "error", "-y"]
    if video:
        command += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}"]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    if video:
        command += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS)]
        command += ["-pix_fmt", "yuv420p"]
    if audio:
        command += ["-c:a", "aac", "-b:a", "96k"]
    command += ["-t", str(seconds), *container_args, str(path)]
    subprocess.run(command, check=True)
    return path


@dataclass
class Recorder:
    """What the pipeline told the world: statuses written and events announced."""

    statuses: list[str] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)  # (event, asset status)

    async def announce(self, event: str, asset: Asset) -> None:
        self.events.append((event, asset.status))


def record_statuses(store: Store, recorder: Recorder) -> None:
    """Note every status the store is given (the real store still does the write)."""
    update = store.update_asset

    async def noting(asset_id: str, **changes):
        if "status" in changes:
            recorder.statuses.append(changes["status"])
        return await update(asset_id, **changes)

    store.update_asset = noting  # type: ignore[method-assign]


async def put_source(
    store: Store, storage: Storage, path: Path, *, poster: Path | None = None, **fields
) -> Asset:
    """An upload as the upload side hands it over: stored whole, `pending`."""
    asset = await store.create_asset(Asset(source="upload", status="pending", name="t", **fields))
    prefix = layout.asset_prefix(asset.id)
    await storage.put_stream(prefix + layout.SOURCE, read_file_chunks(path))
    if poster is not None:
        await storage.put(prefix + layout.POSTER_SOURCE, poster.read_bytes())
    return asset


@asynccontextmanager
async def running_jobs(
    store: Store,
    storage: Storage,
    recorder: Recorder,
    *,
    node_id: str = "node-test",
    single_node: bool = True,
    settings: JobSettings | None = None,
    priority: str = "normal",
) -> AsyncIterator[VodJobs]:
    jobs = VodJobs(
        store,
        storage,
        node_id=node_id,
        pipeline=PipelineSettings(
            rungs=parse_rungs(DEFAULT_RUNGS), preset="ultrafast", priority=priority
        ),
        announce=recorder.announce,
        settings=settings or JobSettings(workers=1, poll_s=0.2),
        single_node=single_node,
    )
    await jobs.start()
    try:
        yield jobs
    finally:
        await jobs.close()


async def wait_finished(store: Store, asset_id: str, timeout: float = 120) -> Asset:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        asset = await store.get_asset(asset_id)
        assert asset is not None
        if asset.status in ("ready", "failed"):
            return asset
        await asyncio.sleep(0.1)
    raise AssertionError(f"{asset_id} did not finish: {asset}")


async def process(
    store: Store, storage: Storage, asset: Asset, recorder: Recorder | None = None
) -> tuple[Asset, Recorder]:
    """Submit the asset to a single node's jobs and wait for it to end."""
    recorder = recorder or Recorder()
    async with running_jobs(store, storage, recorder) as jobs:
        await jobs.submit(asset)
        done = await wait_finished(store, asset.id)
    return done, recorder


def decode_errors(path: Path | str) -> str:
    """What `ffmpeg -v error` says decoding the whole thing (nothing when it is sound)."""
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return run.stderr + ("" if run.returncode == 0 else f"exit {run.returncode}")


def duration_of(path: Path | str) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(json.loads(out)["format"]["duration"])


def keyframe_times(path: Path | str) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-skip_frame", "nokey",
         "-show_entries", "frame=pts_time", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [round(float(f["pts_time"]), 3) for f in json.loads(out)["frames"]]


def stream_codecs(path: Path | str) -> list[str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [s["codec_name"] for s in json.loads(out)["streams"]]


def thumbnail(frame: av.VideoFrame) -> bytes:
    """A small grey picture of a frame, to compare frames by content."""
    small = frame.reformat(64, 36, "gray")
    plane = small.planes[0]
    row = plane.line_size
    data = bytes(plane)
    return b"".join(data[y * row : y * row + 64] for y in range(36))


def difference(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def frames(path: Path | str, count: int | None = None, start_s: float = 0.0) -> list[bytes]:
    """Thumbnails of the frames from `start_s` on (exactly: earlier ones are skipped)."""
    out: list[bytes] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is None or frame.time < start_s - 1e-3:
                continue
            out.append(thumbnail(frame))
            if count is not None and len(out) == count:
                break
    return out
