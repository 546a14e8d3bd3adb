"""LocalStorage beyond the contract: files under the root, durability of a put, and
error messages an operator can act on."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from live.storage import LocalStorage, StorageError


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root")


async def test_objects_are_files_under_the_root(storage):
    await storage.put("a/b/c.bin", b"0123")
    assert (storage.root / "a/b/c.bin").read_bytes() == b"0123"
    assert storage.local_path("a/b/c.bin") == storage.root / "a/b/c.bin"
    assert not [p for p in (storage.root / "a/b").iterdir() if p.name.startswith(".")]


async def test_put_file_is_a_rename_from_the_scratch_directory(storage):
    scratch = storage.scratch_dir() / "big.mp4"
    scratch.write_bytes(b"mp4")
    inode = scratch.stat().st_ino
    await storage.put_file("v/download.mp4", scratch)
    assert (storage.root / "v/download.mp4").stat().st_ino == inode and not scratch.exists()


async def test_a_delete_prefix_removes_the_directory(storage):
    await storage.put("x/y/z", b"z")
    assert await storage.delete_prefix("x/") == 1
    assert not (storage.root / "x").exists()


async def test_a_directory_removed_between_puts_is_made_again(storage):
    await storage.put("x/y/first", b"1")
    assert await storage.delete_prefix("x/") == 1
    await storage.put_parts("x/y/second", [b"2", b"2"])
    assert (storage.root / "x/y/second").read_bytes() == b"22"


async def test_errors_say_what_went_wrong_and_leave_nothing(storage, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("live.storage.local.os.replace", full)
    with pytest.raises(StorageError, match="cannot write a/b: the disk is full"):
        await storage.put("a/b", b"x")
    assert await storage.size("a/b") is None
    assert not list((storage.root / "a").iterdir())  # no temporary file left behind

    async def chunks():
        yield b"data"

    with pytest.raises(StorageError, match="cannot write a/c: the disk is full"):
        await storage.put_stream("a/c", chunks())
    assert not list((storage.root / "a").iterdir())
    with pytest.raises(StorageError, match="cannot write a/d: the disk is full"):
        await storage.put_parts("a/d", [b"x", b"y"])
    assert not list((storage.root / "a").iterdir())


async def test_a_put_fsyncs_file_and_directory_unless_it_need_not_be_durable_yet(
    storage, monkeypatch
):
    synced: list[int] = []
    monkeypatch.setattr("live.storage.local.os.fsync", synced.append)
    await storage.put("d/a", b"a")
    assert len(synced) == 2  # the file, then its directory after the rename
    synced.clear()
    await storage.put("d/b", b"b", durable=False)
    await storage.put_parts("d/c", [b"c"], durable=False)
    assert synced == [] and (storage.root / "d/b").read_bytes() == b"b"


async def test_sync_flushes_the_file_system_once(storage, monkeypatch):
    flushed: list[Path] = []
    monkeypatch.setattr("live.storage.local.sync_file_system", flushed.append)
    await storage.put("d/b", b"b", durable=False)
    await storage.sync()
    assert flushed == [storage.root]
    flushed.clear()
    await LocalStorage(storage.root, fsync=False).sync()  # durability turned off
    assert flushed == []


def test_the_file_system_flush_is_a_real_syncfs(tmp_path):
    from live.storage.files import sync_file_system

    sync_file_system(tmp_path)  # raises on failure
    with pytest.raises(OSError):
        sync_file_system(tmp_path / "missing")
