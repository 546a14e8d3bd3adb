"""The session's life without sockets or PyAV: publish, takeover, the reconnect
window, the lease, the store's audit and the closing of orphans."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from waiting import eventually

from live.broadcast.leases import Holder, Lease, LeaseBusy, LeaseUnavailable, LocalLeases
from live.broadcast.manager import PublishRefused, SessionRules, StreamManager
from live.broadcast.publisher import Publisher
from live.broadcast.recovery import close_orphans
from live.media.packet import MediaPacket, TrackInfo
from live.store import SqliteStore
from live.store.errors import StoreUnavailable
from live.store.models import Livestream, Session
from live.store.times import utcnow

VIDEO = TrackInfo(kind="video", codec="h264", extradata=b"\x01", width=640, height=360)


@dataclass
class Events:
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    async def emit(
        self, event: str, livestream: Livestream, session: Session | None, live=None
    ) -> None:
        self.seen.append((event, session.id if session else None))


@dataclass
class Connection:
    """Stands for an ingest connection: records why the manager closed it."""

    stopped: list[str] = field(default_factory=list)

    def stop(self, reason: str, message: str = "") -> None:
        self.stopped.append(reason)


class ScriptedLeases(LocalLeases):
    """Leases as a cluster would answer them: held elsewhere by `holder`, or
    unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.holder: Holder | None = None
        self.unreachable = False
        self.taken_over: list[Holder] = []
        self.granted: list[Lease] = []

    async def acquire(self, livestream_id, *, may_take_over, on_lost=None) -> Lease:
        if self.unreachable:
            raise LeaseUnavailable()
        if self.holder is not None:
            if not may_take_over(self.holder):
                raise LeaseBusy(self.holder)
            self.taken_over.append(self.holder)
        lease = await super().acquire(livestream_id, may_take_over=may_take_over, on_lost=on_lost)
        lease.displaced = self.holder
        self.granted.append(lease)
        return lease


@pytest.fixture
def leases() -> ScriptedLeases:
    return ScriptedLeases()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def make_manager(
    store: SqliteStore, leases: ScriptedLeases, events: Events
) -> AsyncIterator[Callable[..., StreamManager]]:
    made: list[StreamManager] = []

    def make(**rules) -> StreamManager:
        manager = StreamManager(store, None, SessionRules(**rules), leases=leases, events=events)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.shutdown()


async def publish(
    manager: StreamManager, livestream: Livestream, remote: str = "10.0.0.1:1"
) -> tuple[Publisher, Connection]:
    connection = Connection()
    publisher = await manager.begin_publish(
        livestream.stream_key, protocol="rtmp", remote_addr=remote, stop=connection.stop
    )
    return publisher, connection


def send_media(publisher: Publisher, frames: int = 3, size: int = 1000) -> None:
    publisher.set_track(VIDEO)
    for i in range(frames):
        publisher.push(MediaPacket("video", i * 33, i * 33, b"\0" * size, keyframe=i == 0))


async def test_second_publisher_is_refused_while_the_first_sends(make_manager, store) -> None:
    manager = make_manager(stale_after_s=60)
    livestream = await store.create_livestream(name="show")
    first, _ = await publish(manager, livestream)
    send_media(first)
    with pytest.raises(PublishRefused) as refused:
        await publish(manager, livestream, "10.0.0.2:2")
    assert refused.value.reason == "busy"
    assert manager.broadcasts[livestream.id].publisher is first


async def test_takeover_always_closes_the_old_connection_and_keeps_the_session(
    make_manager, store, events
) -> None:
    manager = make_manager(publisher_takeover="always")
    livestream = await store.create_livestream(name="show", reconnect_window_s=10)
    _first, first_connection = await publish(manager, livestream)
    session_id = manager.broadcasts[livestream.id].session.id
    second, _ = await publish(manager, livestream, "10.0.0.2:2")
    assert first_connection.stopped == ["publisher_disconnected"]
    assert manager.broadcasts[livestream.id].publisher is second
    assert manager.broadcasts[livestream.id].session.id == session_id
    assert [e for e, _ in events.seen] == [
        "livestream.connected",
        "livestream.disconnected",
        "livestream.connected",
    ]


async def test_reconnect_within_the_window_continues_the_session(make_manager, store) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show", reconnect_window_s=10)
    first, _ = await publish(manager, livestream)
    session_id = manager.broadcasts[livestream.id].session.id
    await first.end("publisher_disconnected")
    assert manager.current_session(livestream.id).reconnecting is True
    await publish(manager, livestream)
    assert manager.broadcasts[livestream.id].session.id == session_id
    assert manager.current_session(livestream.id).reconnecting is False
    sessions, total = await store.list_sessions(livestream.id)
    assert total == 1 and sessions[0].ended_at is None


async def test_the_reconnect_wait_is_not_counted_as_broadcast_time(make_manager, store) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show", reconnect_window_s=1)
    publisher, _ = await publish(manager, livestream)
    send_media(publisher)
    await publisher.end("publisher_disconnected")
    left_at = utcnow()

    async def ended() -> Session | None:
        sessions, _ = await store.list_sessions(livestream.id)
        return sessions[0] if sessions[0].ended_at is not None else None

    await eventually(ended, timeout=5)
    session = await ended()
    assert session.end_reason == "publisher_disconnected"
    # It ended when the publisher left, not when the 1 s window ran out.
    assert session.ended_at <= left_at
    assert session.bytes_in == 3000
    assert session.video["codec"] == "h264"


async def test_live_figures_reach_the_history_while_the_session_goes_on(
    make_manager, store
) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show")
    publisher, _ = await publish(manager, livestream)
    send_media(publisher, frames=5, size=400)
    await manager.checkpoint()
    sessions, _ = await store.list_sessions(livestream.id)
    assert sessions[0].ended_at is None
    assert sessions[0].bytes_in == 2000
    assert sessions[0].video == manager.current_session(livestream.id).session.video
    assert sessions[0].video["width"] == 640


async def test_a_stream_held_by_a_fresh_node_is_refused(make_manager, store, leases) -> None:
    manager = make_manager(stale_after_s=2)
    livestream = await store.create_livestream(name="show")
    leases.holder = Holder("node-a", active_at=time.time())  # sent media just now
    with pytest.raises(PublishRefused) as refused:
        await publish(manager, livestream)
    assert refused.value.reason == "busy"
    assert "node-a" in str(refused.value)
    assert livestream.id not in manager.broadcasts
    _, total = await store.list_sessions(livestream.id)
    assert total == 0


async def test_a_stale_holder_elsewhere_is_taken_over(make_manager, store, leases) -> None:
    manager = make_manager(stale_after_s=2)
    livestream = await store.create_livestream(name="show")
    leases.holder = Holder("node-a", active_at=0.0)  # silent since 1970
    await publish(manager, livestream)
    assert leases.taken_over == [Holder("node-a", 0.0)]
    assert livestream.id in manager.broadcasts


async def test_a_dead_nodes_session_is_closed_after_the_takeover(store, leases, events) -> None:
    livestream = await store.create_livestream(name="show")
    dead_nodes = Session(livestream_id=livestream.id, protocol="srt")
    await store.create_session(dead_nodes)
    finished: list[str] = []

    async def on_orphan(session: Session) -> None:
        finished.append(session.id)

    manager = StreamManager(
        store,
        None,
        SessionRules(displaced_grace_s=0.0),
        leases=leases,
        events=events,
        on_orphan=on_orphan,
    )
    try:
        leases.holder = Holder("node-a", active_at=0.0)
        await publish(manager, livestream)
        await eventually(lambda: finished)
        assert finished == [dead_nodes.id]
        closed = await store.get_session(dead_nodes.id)
        assert closed.end_reason == "error"
        ours = manager.broadcasts[livestream.id].session
        assert (await store.get_session(ours.id)).ended_at is None
    finally:
        await manager.shutdown()


async def test_no_publish_without_a_lease_decision(make_manager, store, leases) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show")
    leases.unreachable = True
    with pytest.raises(PublishRefused) as refused:
        await publish(manager, livestream)
    assert "unreachable" in str(refused.value)
    assert manager.broadcasts == {}


async def test_a_lost_lease_stops_the_publisher_here(make_manager, store, leases) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show", reconnect_window_s=10)
    _, connection = await publish(manager, livestream)
    lease = leases.granted[0]
    assert lease.on_lost is not None
    await lease.on_lost("taken over by node-b")
    assert connection.stopped == ["publisher_disconnected"]
    assert livestream.id not in manager.broadcasts
    sessions, _ = await store.list_sessions(livestream.id)
    assert sessions[0].end_reason == "publisher_disconnected"


async def test_the_audit_ends_what_the_store_banned(make_manager, store) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show")
    _, connection = await publish(manager, livestream)
    await store.ban(livestream.id, reason="abuse")  # as another node's API would
    await manager.audit()
    assert connection.stopped == ["banned"]
    sessions, _ = await store.list_sessions(livestream.id)
    assert sessions[0].end_reason == "banned"


async def test_the_audit_ends_a_stream_whose_key_was_reset_elsewhere(make_manager, store) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show")
    _, connection = await publish(manager, livestream)
    await store.reset_stream_key(livestream.id)
    await manager.audit()
    assert connection.stopped == ["key_reset"]


async def test_orphans_are_closed_once_and_held_streams_are_left_alone(store) -> None:
    held = await store.create_livestream(name="held")
    orphaned = await store.create_livestream(name="orphaned")
    for livestream in (held, orphaned):
        await store.create_session(Session(livestream_id=livestream.id, protocol="rtmp"))
        await store.set_live(livestream.id, True)
    leases = ScriptedLeases()
    await leases.acquire(held.id, may_take_over=lambda h: False)
    claimed: set[str] = set()

    class OnceLeases(ScriptedLeases):
        async def held_anywhere(self, livestream_id: str) -> bool:
            return await leases.held_anywhere(livestream_id)

        async def claim_orphan(self, session_id: str) -> bool:
            first = session_id not in claimed
            claimed.add(session_id)
            return first

    handled: list[Session] = []

    async def on_orphan(session: Session) -> Awaitable[None] | None:
        handled.append(session)
        return None

    ended_by = await asyncio.gather(
        close_orphans(store, OnceLeases(), on_orphan=on_orphan),
        close_orphans(store, OnceLeases(), on_orphan=on_orphan),
    )
    assert sorted(len(ended) for ended in ended_by) == [0, 1]
    assert [s.livestream_id for s in handled] == [orphaned.id]
    held_sessions, _ = await store.list_sessions(held.id)
    orphan_sessions, _ = await store.list_sessions(orphaned.id)
    assert held_sessions[0].ended_at is None
    assert orphan_sessions[0].end_reason == "error"
    assert (await store.get_livestream(held.id)).live is True
    assert (await store.get_livestream(orphaned.id)).live is False


async def test_a_sessions_end_waits_out_an_unreachable_store(make_manager, store, monkeypatch):
    manager = make_manager()
    livestream = await store.create_livestream(name="show", reconnect_window_s=0)
    publisher, _ = await publish(manager, livestream)
    real_end = store.end_session
    failures = [StoreUnavailable("down"), StoreUnavailable("still down")]

    async def flaky_end(*args, **kwargs):
        if failures:
            raise failures.pop(0)
        return await real_end(*args, **kwargs)

    monkeypatch.setattr(store, "end_session", flaky_end)
    await publisher.end("publisher_disconnected")  # no reconnect window: ends now
    assert livestream.id not in manager.broadcasts  # the output ended all the same

    async def written() -> bool:
        sessions, _ = await store.list_sessions(livestream.id)
        return sessions[0].end_reason == "publisher_disconnected"

    await eventually(written, timeout=10)
    assert failures == []


async def test_session_writes_carry_the_leases_fence(make_manager, store, leases) -> None:
    manager = make_manager()
    livestream = await store.create_livestream(name="show")
    publisher, _ = await publish(manager, livestream)
    session_id = manager.broadcasts[livestream.id].session.id
    # Another owner wrote with a newer token: this node's writes are fenced off.
    await store.update_session(session_id, fence=leases.granted[0].token + 1, bytes_in=7)
    send_media(publisher)
    await manager.checkpoint()
    assert (await store.get_session(session_id)).bytes_in == 7
