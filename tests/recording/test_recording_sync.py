"""PeriodicSync: one storage sync for whatever the recorders wrote within the
interval, no timer while nothing is written, and a sync before finalising."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from recording_testing import new_broadcast, record

from live.recording import layout
from live.recording.durability import PeriodicSync
from live.recording.service import RecordingService
from live.storage import LocalStorage, StorageError
from live.store import SqliteStore


class CountingSyncs(LocalStorage):
    """Local storage that counts its syncs and the fsyncs of its puts."""

    def __init__(self, root: Path, *, failing: bool = False) -> None:
        super().__init__(root)
        self.syncs = 0
        self.durable_puts = 0
        self.failing = failing

    async def put(self, key: str, data: bytes, **options) -> None:
        self.durable_puts += options.get("durable", True)
        await super().put(key, data, **options)

    async def put_parts(self, key, parts, **options) -> int:
        self.durable_puts += options.get("durable", True)
        return await super().put_parts(key, parts, **options)

    async def sync(self) -> None:
        self.syncs += 1
        if self.failing:
            raise StorageError("storage: cannot sync: input/output error")
        await super().sync()


@pytest.fixture
async def store(tmp_path: Path):
    instance = await SqliteStore.open(tmp_path / "db")
    yield instance
    await instance.close()


async def test_writes_within_the_interval_share_one_sync(tmp_path):
    storage = CountingSyncs(tmp_path)
    syncing = PeriodicSync(storage, interval=0.2)
    syncing.written()  # the first after a quiet time: synced at once
    await asyncio.sleep(0.05)
    assert storage.syncs == 1
    for _ in range(5):
        syncing.written()
        await asyncio.sleep(0.01)
    assert storage.syncs == 1  # the rest wait for the interval, together
    await asyncio.sleep(0.3)
    assert storage.syncs == 2
    await asyncio.sleep(0.3)
    assert storage.syncs == 2 and syncing._task is not None and syncing._task.done()
    await syncing.close()
    assert storage.syncs == 2  # nothing left to sync


async def test_close_syncs_what_was_left(tmp_path):
    storage = CountingSyncs(tmp_path)
    syncing = PeriodicSync(storage, interval=60)
    syncing.written()
    await asyncio.sleep(0.01)
    syncing.written()  # waits up to a minute
    await syncing.close()
    assert storage.syncs == 2


async def test_a_failing_sync_is_logged_and_syncing_goes_on(tmp_path, caplog):
    storage = CountingSyncs(tmp_path, failing=True)
    syncing = PeriodicSync(storage, interval=0.05)
    syncing.written()
    await asyncio.sleep(0.02)
    syncing.written()
    await asyncio.sleep(0.1)
    assert storage.syncs == 2 and "cannot sync" in caplog.text
    await syncing.close()


async def test_a_recording_writes_nothing_durably_until_it_is_finalised(store, tmp_path, clip):
    storage = CountingSyncs(tmp_path / "recordings")
    service = RecordingService(store, storage, segment_target=1.0)
    broadcast = await new_broadcast(store)
    await record(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    # the segments, the init section and their manifests: none fsynced; then
    # finalising syncs, and writes its own objects (playlist, poster...) durably
    assert storage.syncs >= 2  # at least the periodic one and finalising's
    names = {info.key.rsplit("/", 1)[1] for info in await storage.list(f"assets/{asset.id}/")}
    finalised = names & {layout.PLAYLIST, layout.POSTER, layout.SPRITE, layout.SPRITE_VTT}
    assert layout.PLAYLIST in finalised and storage.durable_puts == len(finalised)
