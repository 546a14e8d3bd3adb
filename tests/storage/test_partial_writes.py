"""Writing one object in pieces over many calls (resumable uploads), on local files
and on S3 (moto's server mode; run under the e2e lock): invisible until finished,
every byte that arrived kept when the source fails half-way, the state plain JSON
that another process carries on from, and nothing left behind by an abort."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.storage import LocalStorage, Storage
from live.storage.base import PartialWrite
from live.storage.s3 import MIN_PART_SIZE, S3Storage

BODY = bytes(range(256)) * 40  # 10 240 bytes


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest, **s3: int) -> Storage:
    if kind == "local":
        return LocalStorage(tmp_path / "root")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket.name, bucket.prefix, endpoint_url=bucket.endpoint, **s3)


@pytest.fixture(params=["local", "s3"])
async def storage(request, tmp_path: Path) -> AsyncIterator[Storage]:
    instance = _open(request.param, tmp_path, request)
    try:
        yield instance
    finally:
        await instance.close()


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


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


async def test_s3_pieces_become_5_mib_parts_and_staging_objects_go(s3_bucket, tmp_path, request):
    storage = _open("s3", tmp_path, request, part_size=MIN_PART_SIZE)
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


async def test_s3_abort_ends_the_multipart_upload(s3_bucket, tmp_path, request):
    storage = _open("s3", tmp_path, request, part_size=MIN_PART_SIZE)
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


async def test_s3_presigned_put_signs_the_length(s3_bucket, tmp_path, request):
    from urllib.parse import parse_qs, urlsplit

    import aiohttp

    storage = _open("s3", tmp_path, request)
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
