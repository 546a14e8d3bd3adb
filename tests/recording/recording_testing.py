"""Helpers for recorder tests: a Broadcast stand-in over the real Hub and HLS
packager (the recorder stores the packager's parts), and probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from waiting import eventually

from live.broadcast.hub import Hub
from live.hls import HlsRegistry
from live.packaging.packager import HlsPackager, PackagingSettings
from live.recording.service import RecordingService
from live.store.models import Livestream, Session


@dataclass
class FakeBroadcast:
    """What a recorder reads from a Broadcast: the livestream, the session, and the
    packager that makes the parts from the hub's packets."""

    livestream: Livestream
    session: Session | None
    hub: Hub = field(default_factory=Hub)
    packager: HlsPackager | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self, service: RecordingService) -> asyncio.Future:
        """Run the packager and the service's consumer, as the manager does."""
        assert self.packager is not None
        self.tasks.append(asyncio.create_task(self.packager.run()))
        consumer = service.consumer(self)
        if consumer is not None:
            self.tasks.append(asyncio.create_task(consumer))
        return asyncio.gather(*self.tasks)


async def new_broadcast(store, latency_mode: str = "low", **settings) -> FakeBroadcast:
    livestream = await store.create_livestream(name="rec", **settings)
    session = await store.create_session(Session(livestream_id=livestream.id, protocol="rtmp"))
    broadcast = FakeBroadcast(livestream, session)
    broadcast.packager = HlsPackager(
        broadcast.hub.subscribe("hls", max_packets=3000),
        HlsRegistry(),
        livestream.playback_id,
        PackagingSettings(latency_mode=latency_mode),
    )
    return broadcast


async def feed(broadcast: FakeBroadcast, *steps, end: str | None = "publisher_disconnected"):
    """Push (tracks, packets) steps; "publisher" marks a new publisher."""
    for step in steps:
        if step == "publisher":
            broadcast.hub.publisher_changed()
            continue
        tracks, packets = step
        broadcast.hub.set_tracks(tracks)
        for number, packet in enumerate(packets):
            broadcast.hub.push(packet)
            if number % 20 == 0:
                await asyncio.sleep(0)
    if end:
        broadcast.hub.end(end)


async def record(
    service: RecordingService, broadcast: FakeBroadcast, *steps, end="publisher_disconnected"
):
    running = broadcast.start(service)
    await feed(broadcast, *steps, end=end)
    await asyncio.wait_for(running, 20)
    await service.close(60)


async def recover_after_restart(store, storage, asset_id: str, **settings):
    """Start a new service as a restarted server would, let it recover the one
    recording left unfinished, and return that asset as it is then."""
    restarted = RecordingService(store, storage, **settings)
    assert await restarted.recover() == 1
    await restarted.close(60)
    return await store.get_asset(asset_id)


async def record_then_die(service, broadcast, clip, segments: int) -> None:
    """Record without an end, let `segments` segments be stored, then stop as a kill
    would: the segment under way is only in memory."""
    running = broadcast.start(service)
    await feed(broadcast, (clip.tracks, clip.packets), end=None)
    recorder = next(iter(service.recorders))
    await eventually(
        lambda: recorder.segments_written >= segments and recorder.pending_parts == 0, 10
    )
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


def probe(path: Path, *entries: str) -> dict:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,codec_name,width,height,nb_read_frames:format=duration",
         "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def video_frames(path: Path) -> int:
    streams = probe(path)["streams"]
    return sum(int(s["nb_read_frames"]) for s in streams if s["codec_type"] == "video")
