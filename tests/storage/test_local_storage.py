"""LocalStorage: the object-store operations, durability rules and error messages."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from live.storage import LocalStorage, ObjectInfo, StorageError, check_key


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root")


def test_put_get_ranges_size(storage):
    storage.put("a/b/c.bin", b"0123456789")
    assert storage.get("a/b/c.bin") == b"0123456789"
    assert storage.get("a/b/c.bin", 2, 5) == b"234"
    assert storage.get("a/b/c.bin", 8) == b"89"
    assert storage.get("a/b/c.bin", 8, 100) == b"89"
    assert storage.size("a/b/c.bin") == 10 and storage.size("a/nope") is None
    with pytest.raises(KeyError):
        storage.get("a/nope")
    storage.put("a/b/c.bin", b"new")  # replaces atomically
    assert storage.get("a/b/c.bin") == b"new"
    assert not [p for p in (storage.root / "a/b").iterdir() if p.name.startswith(".")]


def test_append_list_delete(storage):
    storage.append("x/log", b"one\n")
    storage.append("x/log", b"two\n")
    storage.put("x/y/z", b"z")
    storage.put("xx", b"other prefix")
    assert storage.get("x/log") == b"one\ntwo\n"
    assert storage.list("x/") == [ObjectInfo("x/log", 8), ObjectInfo("x/y/z", 1)]
    assert [info.key for info in storage.list("x")] == ["x/log", "x/y/z", "xx"]
    assert storage.list("nothing/") == []
    storage.delete("x/log")
    storage.delete("x/log")  # missing: not an error
    assert storage.delete_prefix("x/") == 1
    assert not (storage.root / "x").exists()
    assert storage.get("xx") == b"other prefix"


def test_put_file(storage):
    scratch = storage.scratch_dir() / "big.mp4"
    scratch.write_bytes(b"mp4")
    storage.put_file("v/download.mp4", scratch)
    assert storage.get("v/download.mp4") == b"mp4" and not scratch.exists()
    assert storage.local_path("v/download.mp4") == storage.root / "v/download.mp4"
    assert all(".scratch" not in info.key for info in storage.list(""))


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a b", "a\\b"])
def test_bad_keys_are_refused(storage, key):
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        storage.put(key, b"x")


def test_errors_say_what_went_wrong(storage, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("live.storage.local.os.replace", full)
    with pytest.raises(StorageError, match="cannot write a/b: the disk is full"):
        storage.put("a/b", b"x")
    assert storage.size("a/b") is None
    assert not list((storage.root / "a").iterdir())  # no temporary file left behind


def test_an_appender_keeps_the_object_open_and_adds_each_piece(storage, monkeypatch):
    out = storage.appender("seg/1.m4s")
    out.write(b"moof")
    out.write(b"mdat")
    assert storage.get("seg/1.m4s") == b"moofmdat"  # in the kernel at once
    out.close()
    out.close()  # twice: nothing more
    with pytest.raises(StorageError, match="closed"):
        out.write(b"late")
    again = storage.appender("seg/1.m4s")  # appends to what is there
    again.write(b"!")
    again.close()
    assert storage.get("seg/1.m4s") == b"moofmdat!"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    broken = storage.appender("seg/2.m4s")
    monkeypatch.setattr("live.storage.local.os.write", full)
    with pytest.raises(StorageError, match=r"cannot append to seg/2\.m4s: the disk is full"):
        broken.write(b"x")
    broken.close()
