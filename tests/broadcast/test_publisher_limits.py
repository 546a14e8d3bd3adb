"""Limits the manager and the Publisher enforce, whatever the protocol: live streams
per node (`max_publishers`) and bitrate per publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from live.broadcast.bitrate import BitrateLimit, BitrateMeter
from live.broadcast.manager import PublishRefused, SessionRules, StreamManager
from live.broadcast.publisher import Publisher
from live.limits import LimitHits
from live.media.packet import MediaPacket, TrackInfo
from live.store import SqliteStore
from live.store.models import Livestream

VIDEO = TrackInfo(kind="video", codec="h264", extradata=b"\x01", width=640, height=360)


@dataclass
class Connection:
    """Stands for an ingest connection: what it was told when closed."""

    stopped: list[tuple[str, str]] = field(default_factory=list)

    def stop(self, reason: str, message: str = "") -> None:
        self.stopped.append((reason, message))


@pytest.fixture
async def hits() -> LimitHits:
    return LimitHits()


@pytest.fixture
async def manager(store: SqliteStore, hits: LimitHits) -> AsyncIterator[StreamManager]:
    rules = SessionRules(max_publishers=2, bitrate_limit=BitrateLimit(100, window_s=1.0))
    instance = StreamManager(store, None, rules, limit_hits=hits)
    yield instance
    await instance.shutdown()


async def publish(manager: StreamManager, livestream: Livestream) -> tuple[Publisher, Connection]:
    connection = Connection()
    publisher = await manager.begin_publish(
        livestream.stream_key, protocol="rtmp", remote_addr="10.0.0.1:1", stop=connection.stop
    )
    publisher.set_track(VIDEO)
    return publisher, connection


def push(publisher: Publisher, size: int, pts: int = 0) -> None:
    publisher.push(MediaPacket("video", pts, pts, b"\0" * size, keyframe=pts == 0))


# -- max_publishers ---------------------------------------------------------------------


async def test_one_stream_over_max_publishers_is_refused_and_the_others_go_on(manager, store, hits):
    streams = [await store.create_livestream(name=f"s{i}", reconnect_window_s=5) for i in range(3)]
    first, _ = await publish(manager, streams[0])
    second, _ = await publish(manager, streams[1])
    with pytest.raises(PublishRefused) as refused:
        await publish(manager, streams[2])
    assert refused.value.reason == "limit"
    assert "at most 2 live streams" in str(refused.value)
    assert hits.counts["max_publishers"] == 1 and manager.refusals["limit"] == 1
    assert set(manager.broadcasts) == {streams[0].id, streams[1].id}
    push(first, 100)
    push(second, 100)
    assert first.attached and second.attached

    # a publisher back within its stream's reconnect window takes no new room
    await first.end("publisher_disconnected")
    again, _ = await publish(manager, streams[0])
    assert again.attached and hits.counts["max_publishers"] == 1

    # once a stream has ended, there is room again
    await manager.disconnect(streams[1].id, "kicked")
    third, _ = await publish(manager, streams[2])
    assert third.attached


# -- bitrate -------------------------------------------------------------------------------


def test_meter_averages_over_its_window():
    meter = BitrateMeter(BitrateLimit(1000, window_s=2.0), now=0.0)
    # a keyframe burst inside the window is no reason: the window's average is
    assert meter.add(200_000, 0.1) is None  # 1.6 Mbit of the 2 Mbit the window allows
    assert meter.add(10_000, 1.9) is None
    assert meter.add(10_000, 2.0) is None  # 1760 kbit over 2 s: 880 kbps
    # the next window, at 1200 kbps: called once it holds more than the 2 Mbit the
    # whole window allows (17 x 120 kbit), before its end
    for t in range(1, 17):
        assert meter.add(15_000, 2.0 + t * 0.1) is None
    assert meter.add(15_000, 3.7) == 1020


def test_meter_measures_a_whole_window_just_over():
    meter = BitrateMeter(BitrateLimit(1000, window_s=2.0), now=0.0)
    assert meter.add(125_000, 1.0) is None  # 1 Mbit in 1 s
    assert meter.add(125_000, 2.2) is None  # 2 Mbit over 2.2 s: 909 kbps, under ...
    meter = BitrateMeter(BitrateLimit(900, window_s=2.0), now=0.0)
    assert meter.add(125_000, 1.0) is None
    assert meter.add(125_000, 2.2) == 909  # ... and over a 900 kbps limit


def test_meter_calls_a_flood_at_once():
    meter = BitrateMeter(BitrateLimit(1000, window_s=5.0), now=0.0)
    assert meter.add(625_000, 0.5) is None  # exactly the 5 s budget
    assert meter.add(1, 0.5) == 1000  # one byte more: over, without waiting 5 s


async def test_a_publisher_over_its_bitrate_is_disconnected_with_the_reason(manager, store, hits):
    livestream = await store.create_livestream(name="loud", reconnect_window_s=0)
    calm_stream = await store.create_livestream(name="calm", reconnect_window_s=0)
    loud, connection = await publish(manager, livestream)
    calm, calm_connection = await publish(manager, calm_stream)
    push(loud, 12_000)  # under the 12 500 bytes 100 kbps allows in 1 s
    assert connection.stopped == []
    push(loud, 1_000, pts=33)
    assert connection.stopped == [
        ("error", "bitrate 104 kbps is over this server's limit of 100 kbps (averaged over 1 s)")
    ]
    assert hits.counts["max_publisher_bitrate_kbps"] == 1
    assert not loud.attached
    await loud.end("error")  # what the connection does once closed
    (session,) = (await store.list_sessions(livestream.id))[0]
    assert session.end_reason == "error"
    assert livestream.id not in manager.broadcasts
    # the other publisher carries on
    push(calm, 1_000)
    assert calm.attached and calm_connection.stopped == []
    assert calm_stream.id in manager.broadcasts
