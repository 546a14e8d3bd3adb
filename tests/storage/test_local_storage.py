"""LocalStorage beyond the contract: files under the root, durability of a put, and
error messages an operator can act on."""

from __future__ import annotations

import errno
import os
import subprocess
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


def resident_bytes(path: Path) -> int:
    """How much of the file is in the page cache after dropping its clean pages:
    what is still there is dirty, not yet written back."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    result = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(result.stdout.strip())


async def test_sync_writes_back_the_lazy_puts_and_nothing_else(storage, tmp_path):
    """The kernel's flushers, or another process's sync, may write a file back
    before the test looks: such an attempt tells nothing and is made again with
    fresh files. A sync that writes back the whole file system never passes."""
    payload = os.urandom(256 * 1024)
    for attempt in range(10):
        segment, moved = storage.root / f"d/segment{attempt}", storage.root / f"d/moved{attempt}"
        await storage.put_parts(
            f"d/segment{attempt}", [payload[:1000], payload[1000:]], durable=False
        )
        journal_segment = storage.scratch_dir() / f"journal-segment{attempt}"
        journal_segment.write_bytes(payload)
        await storage.put_file(f"d/moved{attempt}", journal_segment, durable=False)
        bystander = tmp_path / "root" / f"spool-like{attempt}"  # same file system, never put
        bystander.write_bytes(payload)
        # (looking starts the writeback of what is dirty: not at the bystander)
        if not all(resident_bytes(path) > 0 for path in (segment, moved)):
            continue  # written back already by someone else: dirty until synced, no more

        await storage.sync()
        assert resident_bytes(segment) == 0
        assert resident_bytes(moved) == 0
        if resident_bytes(bystander) == len(payload):  # left to the kernel
            return
    pytest.fail("the bystander file was written back in every attempt")


async def test_sync_flushes_each_lazy_file_once(storage, monkeypatch):
    flushed: list[tuple[list[Path], list[Path]]] = []
    monkeypatch.setattr("live.storage.local.sync_files", lambda f, d: flushed.append((f, d)))
    await storage.put("d/durable", b"a")
    await storage.sync()
    assert flushed == []  # nothing lazy: nothing to do
    await storage.put("d/b", b"b", durable=False)
    await storage.put("d/b", b"b2", durable=False)
    await storage.put("e/c", b"c", durable=False)
    await storage.sync()
    await storage.sync()
    root = storage.root
    assert flushed == [([root / "d/b", root / "e/c"], [root / "d", root / "e"])]
    flushed.clear()
    no_fsync = LocalStorage(storage.root, fsync=False)  # durability turned off
    await no_fsync.put("d/x", b"x", durable=False)
    await no_fsync.sync()
    assert flushed == []


async def test_sync_skips_what_was_deleted_since(storage):
    await storage.put("d/gone", b"a", durable=False)
    await storage.put("gone/b", b"b", durable=False)
    await storage.delete_many(["d/gone"])
    await storage.delete_prefix("gone/")  # the directory too
    assert not (storage.root / "gone").exists()
    await storage.sync()  # raises nothing


def test_sync_files_flushes_more_files_than_one_batch_holds(tmp_path):
    from live.storage.files import SYNC_BATCH, sync_files

    paths = [tmp_path / f"f{n}" for n in range(SYNC_BATCH + 3)]
    for path in paths:
        path.write_bytes(b"x" * 8192)
    sync_files(paths, [tmp_path])
    assert [resident_bytes(path) for path in paths] == [0] * len(paths)
    with pytest.raises(NotADirectoryError):
        sync_files([], [paths[0] / "not-a-directory"])
