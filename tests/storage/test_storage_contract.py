"""The storage interface's promises, kept by every storage: local files and S3
(moto's server mode; run under the e2e lock). Objects written in pieces
(resumable uploads) are invisible until finished, keep every byte that arrived
when the source fails half-way, and carry on from their saved state (JSON) in
another process; an abort leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.storage import LocalStorage, ObjectInfo, Storage, check_key
from live.storage.base import PartialWrite
from live.storage.s3 import MIN_PART_SIZE, S3Storage

BODY = bytes(range(256)) * 40  # 10 240 bytes


@pytest.fixture(params=["local", "s3"])
async def storage(request, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        instance: Storage = LocalStorage(tmp_path / "root")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        # small parts, so a multipart upload happens without megabytes of test data
        # (moto, like S3, wants 5 MiB parts but the last; see test_big_stream_*)
        instance = S3Storage(bucket.name, bucket.prefix, endpoint_url=bucket.endpoint)
    try:
        yield instance
    finally:
        await instance.close()


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


async def test_put_then_get_whole_and_by_range(storage):
    await storage.put("a/b/c.bin", BODY)
    assert await storage.get("a/b/c.bin") == BODY
    assert await storage.get("a/b/c.bin", 2, 5) == BODY[2:5]
    assert await storage.get("a/b/c.bin", 10_000) == BODY[10_000:]
    assert await storage.get("a/b/c.bin", 10_000, 99_999) == BODY[10_000:]  # cut to the end
    assert await storage.get("a/b/c.bin", len(BODY)) == b""  # at the end: nothing
    assert await storage.get("a/b/c.bin", 5, 5) == b""
    assert await storage.size("a/b/c.bin") == len(BODY)
    assert await storage.exists("a/b/c.bin")


async def test_put_parts_stores_them_joined(storage):
    parts = [BODY[:100], memoryview(BODY)[100:5000], b"", BODY[5000:]]
    assert await storage.put_parts("seg/s1.m4s", parts) == len(BODY)
    assert await storage.get("seg/s1.m4s") == BODY
    assert [info.key for info in await storage.list("")] == ["seg/s1.m4s"]  # no temporary


async def test_a_put_that_is_not_durable_yet_reads_back_the_same(storage):
    await storage.put("n/a.json", b"{}", durable=False)
    assert await storage.put_parts("n/s.m4s", [BODY[:7], BODY[7:]], durable=False) == len(BODY)
    await storage.sync()
    assert await storage.get("n/a.json") == b"{}" and await storage.get("n/s.m4s") == BODY
    assert [info.key for info in await storage.list("n/")] == ["n/a.json", "n/s.m4s"]


async def test_a_second_put_replaces_the_object_whole(storage):
    await storage.put("k", BODY)
    await storage.put("k", b"short")
    assert await storage.get("k") == b"short" and await storage.size("k") == 5
    assert [info.key for info in await storage.list("")] == ["k"]  # no temporary left


async def test_an_empty_object_is_an_object(storage):
    await storage.put("empty", b"")
    assert await storage.get("empty") == b""
    assert await storage.size("empty") == 0 and await storage.exists("empty")


async def test_a_missing_key(storage):
    with pytest.raises(KeyError):
        await storage.get("no/such")
    with pytest.raises(KeyError):
        await storage.get("no/such", 3, 4)
    with pytest.raises(KeyError):
        await storage.get("no/such", 3, 3)
    with pytest.raises(KeyError):
        async for _ in storage.stream("no/such"):
            pass
    assert await storage.size("no/such") is None
    assert not await storage.exists("no/such")
    await storage.delete_many(["no/such"])  # not an error


async def test_stream_gives_the_range_in_pieces(storage):
    big = BODY * 64  # 655 360 bytes: more than one piece
    await storage.put("big", big)
    pieces = [piece async for piece in storage.stream("big")]
    assert b"".join(pieces) == big and len(pieces) > 1
    assert b"".join([p async for p in storage.stream("big", 100, 300_100)]) == big[100:300_100]
    assert b"".join([p async for p in storage.stream("big", len(big) + 5)]) == b""


async def test_put_stream_and_put_file(storage):
    assert await storage.put_stream("s/one", chunks_of(BODY, 1000)) == len(BODY)
    assert await storage.get("s/one") == BODY
    scratch = storage.scratch_dir() / "upload.bin"
    scratch.write_bytes(BODY[:777])
    await storage.put_file("s/file", scratch, content_type="video/mp4")
    assert await storage.get("s/file") == BODY[:777]
    assert not scratch.exists()  # consumed
    assert all(".scratch" not in info.key for info in await storage.list(""))


async def test_a_failed_stream_leaves_no_object(storage):
    async def broken() -> AsyncIterator[bytes]:
        yield BODY
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        await storage.put_stream("s/broken", broken())
    assert await storage.size("s/broken") is None
    assert await storage.list("s/") == []


async def test_list_by_prefix_sorted_with_sizes(storage):
    for key, data in [("x/y/z", b"z"), ("x/log", b"12345678"), ("xx", b"other"), ("w", b"")]:
        await storage.put(key, data)
    assert await storage.list("x/") == [ObjectInfo("x/log", 8), ObjectInfo("x/y/z", 1)]
    assert [info.key for info in await storage.list("x")] == ["x/log", "x/y/z", "xx"]
    assert [info.key for info in await storage.list("")] == ["w", "x/log", "x/y/z", "xx"]
    assert await storage.list("nothing/") == []
    assert await storage.list("x/y/z") == [ObjectInfo("x/y/z", 1)]


async def test_delete_many_and_delete_prefix(storage):
    keys = [f"d/{n:04d}" for n in range(1203)]  # more than one DeleteObjects batch
    await asyncio.gather(*(storage.put(key, b"x") for key in keys))
    await storage.put("dd", b"kept")
    await storage.delete_many(keys[:3])
    assert len(await storage.list("d/")) == 1200
    assert await storage.delete_prefix("d/") == 1200
    assert await storage.list("d/") == []
    assert await storage.get("dd") == b"kept"


BAD_KEYS = ["", "/abs", "a/../b", "..", "a/..", "./a", "a//b", "a/./b", "a b", "a\\b",
            "a/", "caf\u00e9", "a\nb", "a?b", "a#b", "%2e%2e/x", "x" * 901]  # fmt: skip


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_odd_keys_are_refused_before_anything_is_written(storage, key, tmp_path):
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        await storage.put(key, b"x")
    with pytest.raises(ValueError):
        await storage.get(key)
    with pytest.raises(ValueError):
        await storage.size(key)
    with pytest.raises(ValueError):
        await storage.delete_many([key])
    assert await storage.list("") == []


async def test_no_path_traversal_out_of_the_root(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    (tmp_path / "secret").write_bytes(b"s")
    for key in ("../secret", "a/../../secret"):
        with pytest.raises(ValueError):
            await storage.get(key)
    with pytest.raises(ValueError):
        await storage.list("../")
    assert (tmp_path / "secret").read_bytes() == b"s"


async def test_keys_live_under_the_bucket_prefix(s3_bucket):
    storage = S3Storage(s3_bucket.name, s3_bucket.prefix, endpoint_url=s3_bucket.endpoint)
    try:
        await storage.put("assets/a/one", b"1")
        assert s3_bucket.object_keys() == [f"{s3_bucket.prefix}/assets/a/one"]
        assert [info.key for info in await storage.list("")] == ["assets/a/one"]
    finally:
        await storage.close()


async def test_big_stream_is_a_multipart_upload(s3_bucket):
    part = 5 * 1024 * 1024  # S3's smallest part but the last
    storage = S3Storage(
        s3_bucket.name, s3_bucket.prefix, endpoint_url=s3_bucket.endpoint, part_size=part
    )
    data = bytes(range(251)) * (2 * part // 251 + 1000)  # two parts and a bit
    try:
        assert await storage.put_stream("big.mp4", chunks_of(data, 1024 * 1024)) == len(data)
        head = s3_bucket.server.client().head_object(
            Bucket=s3_bucket.name, Key=f"{s3_bucket.prefix}/big.mp4"
        )
        assert head["ETag"].strip('"').endswith("-3")  # an object made of 3 parts
        assert await storage.get("big.mp4", part - 3, part + 3) == data[part - 3 : part + 3]
        assert await storage.size("big.mp4") == len(data)
    finally:
        await storage.close()


# -- writing in pieces (resumable uploads) --------------------------------------


def _s3(bucket, **options: int) -> S3Storage:
    return S3Storage(bucket.name, bucket.prefix, endpoint_url=bucket.endpoint, **options)


class Saved:
    """What `append` saved, as the store would keep it: through JSON."""

    def __init__(self) -> None:
        self.writes: list[PartialWrite] = []

    async def __call__(self, write: PartialWrite) -> None:
        text = json.dumps({"key": write.key, "size": write.size, "state": write.state})
        self.writes.append(PartialWrite(**json.loads(text)))

    @property
    def last(self) -> PartialWrite:
        return self.writes[-1]


async def test_pieces_are_invisible_until_finished(storage):
    saved = Saved()
    write = await storage.begin_write("assets/a/source")
    for start in range(0, len(BODY), 3000):
        write = await storage.append(write, chunks_of(BODY[start : start + 3000], 700), saved)
        assert saved.last == write
        assert await storage.size("assets/a/source") is None
    assert write.size == len(BODY)
    assert await storage.finish_write(write, content_type="video/mp4") == len(BODY)
    assert await storage.get("assets/a/source") == BODY
    assert [info.key for info in await storage.list("")] == ["assets/a/source"]


async def test_a_failed_source_keeps_what_arrived(storage):
    saved = Saved()

    async def dropped() -> AsyncIterator[bytes]:
        yield BODY[:2500]
        yield BODY[2500:4000]
        raise ConnectionResetError("the client went away")

    write = await storage.begin_write("k")
    with pytest.raises(ConnectionResetError):
        await storage.append(write, dropped(), saved)
    assert saved.last.size == 4000
    # another process carries on from the saved state alone
    write = await storage.append(saved.last, chunks_of(BODY[4000:], 1000), saved)
    await storage.finish_write(write)
    assert await storage.get("k") == BODY


async def test_a_cancelled_append_keeps_what_arrived(storage):
    saved = Saved()
    arrived = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield BODY[:1234]
        arrived.set()
        await asyncio.sleep(3600)
        yield b"never"

    write = await storage.begin_write("k")
    task = asyncio.ensure_future(storage.append(write, stalls(), saved))
    await arrived.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the keeping runs shielded from the cancellation
        if saved.writes:
            break
        await asyncio.sleep(0.02)
    assert saved.last.size == 1234
    await storage.finish_write(await storage.append(saved.last, chunks_of(BODY[1234:], 999), saved))
    assert await storage.get("k") == BODY


async def test_an_empty_write_makes_an_empty_object(storage):
    write = await storage.begin_write("empty")
    assert await storage.finish_write(write) == 0
    assert await storage.get("empty") == b""


async def test_abort_leaves_nothing_behind(storage):
    saved = Saved()
    write = await storage.begin_write("gone/source")
    write = await storage.append(write, chunks_of(BODY, 1000), saved)
    await storage.abort_write(write)
    assert await storage.list("") == []
    await storage.abort_write(write)  # twice is not an error


async def test_local_pieces_live_in_the_scratch_dir_and_stored_names_are_checked(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    write = await storage.begin_write("a/source")
    await storage.append(write, chunks_of(BODY, 4096), Saved())
    files = [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert len(files) == 1 and ".scratch" in files[0].parts
    for state in ({"file": "../../../etc/passwd"}, {"file": "/etc/passwd"}, {}):
        with pytest.raises(ValueError):
            await storage.finish_write(PartialWrite("a/source", 0, state))
    assert await storage.presigned_put("a/source", 10, 60) is None


async def test_local_append_drops_bytes_that_were_never_saved(tmp_path):
    """A crash between writing and saving: the file holds more than the store says;
    the next append starts at the saved size, so no byte is counted twice."""
    storage = LocalStorage(tmp_path / "root")
    saved = Saved()
    write = await storage.append(await storage.begin_write("k"), chunks_of(BODY[:5000], 999), saved)
    ahead = await storage.append(write, chunks_of(b"x" * 700, 700), Saved())  # never stored
    assert ahead.size == 5700
    write = await storage.append(write, chunks_of(BODY[5000:], 999), saved)
    await storage.finish_write(write)
    assert await storage.get("k") == BODY


async def test_s3_pieces_become_5_mib_parts_and_staging_objects_go(s3_bucket):
    storage = _s3(s3_bucket, part_size=MIN_PART_SIZE)
    data = bytes(range(251)) * (MIN_PART_SIZE * 2 // 251 + 3000)  # two parts and a bit
    saved = Saved()
    try:
        write = await storage.begin_write("assets/b/source")
        for start in range(0, len(data), 1024 * 1024):  # one tus-like chunk per call
            write = await storage.append(
                write, chunks_of(data[start : start + 1024 * 1024], 65536), saved
            )
            assert write.size == min(start + 1024 * 1024, len(data))
        assert len(write.state["parts"]) == 2
        assert all(size == MIN_PART_SIZE for _, _, size in write.state["parts"])
        # the tail waits in the bucket, where any node finds it
        assert any(".staged/" in key for key in s3_bucket.object_keys())
        await storage.finish_write(write)
        assert await storage.get("assets/b/source") == data
        assert s3_bucket.object_keys() == [f"{s3_bucket.prefix}/assets/b/source"]
        head = s3_bucket.server.client().head_object(
            Bucket=s3_bucket.name, Key=f"{s3_bucket.prefix}/assets/b/source"
        )
        assert head["ETag"].strip('"').endswith("-3")
    finally:
        await storage.close()


async def test_s3_abort_ends_the_multipart_upload(s3_bucket):
    storage = _s3(s3_bucket, part_size=MIN_PART_SIZE)
    try:
        write = await storage.begin_write("c/source")
        data = b"z" * (MIN_PART_SIZE + 10)
        write = await storage.append(write, chunks_of(data, 1 << 20), Saved())
        client = s3_bucket.server.client()
        assert client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")
        await storage.abort_write(write)
        assert not client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")
        assert s3_bucket.object_keys() == []
    finally:
        await storage.close()


def yarl_url(url: str):
    import yarl

    return yarl.URL(url, encoded=True)


async def test_s3_presigned_put_signs_the_length(s3_bucket):
    from urllib.parse import parse_qs, urlsplit

    import aiohttp

    storage = _s3(s3_bucket)
    try:
        url = await storage.presigned_put("assets/d/source", len(BODY), 600)
        assert url is not None
        query = parse_qs(urlsplit(url).query)
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
        # yarl would re-quote the signed query: keep the URL as signed
        async with aiohttp.ClientSession() as http, http.put(yarl_url(url), data=BODY) as answer:
            assert answer.status == 200, await answer.text()
        assert await storage.get("assets/d/source") == BODY
        assert await storage.presigned_put("x", 6 * 1024**3, 600) is None  # over PutObject's
    finally:
        await storage.close()
