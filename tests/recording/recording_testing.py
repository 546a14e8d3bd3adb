"""Helpers for recorder tests: a Broadcast stand-in over the real Hub, and probes."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from live.broadcast.hub import Hub
from live.recording.service import RecordingService
from live.store.models import Livestream, Session


@dataclass
class FakeBroadcast:
    """What a recorder reads from a Broadcast: the livestream, the session, the hub."""

    livestream: Livestream
    session: Session | None
    hub: Hub = field(default_factory=Hub)


async def new_broadcast(store, **settings) -> FakeBroadcast:
    livestream = await store.create_livestream(name="rec", **settings)
    session = await store.create_session(Session(livestream_id=livestream.id, protocol="rtmp"))
    return FakeBroadcast(livestream, session)


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


async def record(service: RecordingService, broadcast: FakeBroadcast, *steps, end="publisher_disconnected"):  # noqa: E501
    task = asyncio.create_task(service.consumer(broadcast))
    await feed(broadcast, *steps, end=end)
    await asyncio.wait_for(task, 20)
    await service.close(60)


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
