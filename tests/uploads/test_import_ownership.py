"""Who fetches an import by URL: one live node at a time, over the store's import
queue, on SQLite and on a real redis-server. Each "node" is an intake with its own
store connection and node id over the same database and the same storage; the
origin, run by the test, sends its file slowly and counts the requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from uploads_testing import Handed

from live.recording.layout import SOURCE
from live.storage import LocalStorage
from live.store import SqliteStore, Store
from live.store.models import Asset
from live.store.times import utcnow
from live.uploads.importer import ImportLeases
from live.uploads.imports import ImportSettings
from live.uploads.intake import UploadIntake

DATA = bytes(range(256)) * 1024  # 256 KiB, sent in 16 pieces
PIECE = 16 * 1024
FAST = ImportLeases(lease_s=1.0, renew_s=0.2, poll_s=0.1, max_attempts=3)


class Origin:
    """Serves DATA at /slow, one piece every `pause_s`; counts the requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.pause_s = 0.1

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Length": str(len(DATA))})
        await response.prepare(request)
        for start in range(0, len(DATA), PIECE):
            await asyncio.sleep(self.pause_s)
            await response.write(DATA[start : start + PIECE])
        await response.write_eof()
        return response


@pytest.fixture
async def origin() -> AsyncIterator[tuple[Origin, str]]:
    served = Origin()
    app = web.Application()
    app.router.add_get("/slow", served.serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield served, f"http://127.0.0.1:{server.port}/slow"
    finally:
        await server.close()


OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens another connection to the one database the nodes share."""
    if request.param == "sqlite":
        return lambda: SqliteStore.open(tmp_path / "db")
    from live.store.redis import RedisStore

    url = request.getfixturevalue("redis_url")
    return lambda: RedisStore.open(url)


class Node:
    def __init__(self, store: Store, intake: UploadIntake, handed: Handed) -> None:
        self.store = store
        self.intake = intake
        self.handed = handed

    @property
    def fetching(self) -> set[str]:
        return self.intake.importer.fetching


@pytest.fixture
def node(open_store: OpenStore, tmp_path: Path):
    """`async with node(name) as n`: a node until the block ends (then it is closed,
    its fetches back in the queue); `n.intake.importer` is its importer."""

    @asynccontextmanager
    async def make(
        name: str, leases: ImportLeases = FAST, *, start: bool = True
    ) -> AsyncIterator[Node]:
        store = await open_store()
        handed = Handed()
        intake = UploadIntake(
            store, LocalStorage(tmp_path / "storage"), max_upload_bytes=len(DATA) * 2,
            imports=ImportSettings(max_bytes=len(DATA) * 2, timeout_s=60, connect_timeout_s=2),
            on_source_ready=handed.source_ready, announce=handed.announce,
            node_id=name, leases=leases,
        )  # fmt: skip
        try:
            if start:
                await intake.start()
            yield Node(store, intake, handed)
        finally:
            await intake.close()
            await store.close()

    return make


async def _import(node: Node, url: str) -> Asset:
    asset = await node.store.create_asset(Asset(source="url", status="pending", origin_url=url))
    await node.intake.accept(asset, None)
    return asset


async def _until(check: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _claimed_import(open_store, url: str, *claims: tuple[str, float]) -> Asset:
    """A pending import in the store, claimed by each (node, lease seconds) in turn:
    nodes that took it and died."""
    store = await open_store()
    try:
        asset = await store.create_asset(Asset(source="url", status="pending", origin_url=url))
        await store.enqueue_import_job(asset.id)
        for node_id, lease_s in claims:
            now = utcnow()
            assert await store.claim_import_job(node_id, now, now + timedelta(seconds=lease_s))
    finally:
        await store.close()
    return asset


async def test_a_node_that_starts_leaves_an_import_a_live_node_is_fetching(node, origin):
    served, url = origin
    async with node("node-a") as a:
        asset = await _import(a, url)
        assert a.fetching == {asset.id}
        async with node("node-b") as b:  # starts (and resumes) while a fetches
            await asyncio.sleep(1.5 * FAST.lease_s)  # b looks at the queue many times
            assert b.fetching == set()
            await a.intake.importer.wait()
            await asyncio.sleep(3 * FAST.poll_s)
            assert b.fetching == set() and b.handed.ready == []
        assert [x.id for x in a.handed.ready] == [asset.id]
        assert await a.store.get_import_job(asset.id) is None
    assert served.requests == 1


async def test_a_dead_nodes_import_is_taken_over_and_fetched_again_from_the_start(
    node, origin, open_store
):
    served, url = origin
    # a node took it and died: its lease ends in a second and is never renewed
    asset = await _claimed_import(open_store, url, ("dead-node", 1))
    async with node("node-b") as b:
        assert b.fetching == set()  # not before the lease lapses
        await _until(lambda: asset.id in b.fetching)
        await _until(lambda: b.handed.ready)
        job = await b.store.get_import_job(asset.id)
        assert job is None
        assert [x.id for x in b.handed.ready] == [asset.id]
        assert await b.intake.storage.get(f"assets/{asset.id}/{SOURCE}") == DATA
    assert served.requests == 1


async def test_a_node_whose_lease_was_taken_stops_fetching_and_hands_nothing_on(node, origin):
    served, url = origin
    served.pause_s = 0.3
    slow = ImportLeases(lease_s=30, renew_s=0.2, poll_s=None)
    async with node("node-a", slow) as a:
        asset = await _import(a, url)
        await _until(lambda: served.requests == 1)
        # the lease goes to another node (as after a lapse a hung node did not see)
        assert await a.store.release_import_job(asset.id, "node-a")
        now = utcnow()
        taken = await a.store.claim_import_job("node-b", now, now + timedelta(seconds=30))
        assert taken is not None and taken.node_id == "node-b"
        await _until(lambda: not a.fetching, 5)
        assert a.handed.ready == [] and a.handed.announced == []
        held = await a.store.get_import_job(asset.id)
        assert held is not None and held.node_id == "node-b"
        assert not await a.intake.storage.exists(f"assets/{asset.id}/{SOURCE}")


async def test_an_import_taken_over_too_many_times_fails_as_origin_unreachable(
    node, origin, open_store
):
    served, url = origin
    # three nodes died fetching it
    asset = await _claimed_import(
        open_store, url, *((f"dead-{n}", 0) for n in range(FAST.max_attempts))
    )
    async with node("node-d") as d:
        await _until(lambda: d.handed.announced)
        [(event, failed)] = d.handed.announced
        assert event == "asset.failed" and failed.status == "failed"
        assert failed.error is not None and failed.error["code"] == "origin_unreachable"
        assert "3 times" in failed.error["message"]
        await d.intake.importer.wait()
        assert await d.store.get_import_job(asset.id) is None
        assert d.handed.ready == []
    assert served.requests == 0


async def test_a_single_node_restart_fetches_again_and_never_looks_at_an_idle_queue(
    node, origin, open_store
):
    served, url = origin
    # the previous process died fetching it: its lease has 30 s to run
    asset = await _claimed_import(open_store, url, ("process-1", 30))
    single = ImportLeases(lease_s=30, renew_s=0.2, poll_s=None)
    async with node("process-2", single) as second:
        # its start puts the job back and fetches at once, the lease notwithstanding
        assert second.fetching == {asset.id}
        await second.intake.importer.wait()
        assert [x.id for x in second.handed.ready] == [asset.id]
        assert second.intake.importer._poller is None  # no rounds on a single node
    assert served.requests == 1
