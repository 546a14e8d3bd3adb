"""Uploads in cluster mode: two nodes over one Redis store and one S3 bucket (real
redis-server, moto's server mode; run under the e2e lock). A tus upload's PATCHes
alternate between the nodes and the object is exact, made of 5 MiB parts with
nothing staged left over; a presigned PUT is noticed when the asset is read; an
abandoned upload's multipart upload is aborted by the sweeper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import yarl
from uploads_testing import Rig, make_rig

from live.recording.layout import SOURCE
from live.storage.s3 import MIN_PART_SIZE, S3Storage
from live.store.redis import RedisStore

MIB = 1024 * 1024
DATA = bytes(range(251)) * (12 * MIB // 251 + 1)  # a little over 12 MiB


@pytest.fixture
async def nodes(tmp_path: Path, redis_url: str, s3_bucket) -> AsyncIterator[tuple[Rig, Rig]]:
    store = await RedisStore.open(redis_url)
    storages = [
        S3Storage(s3_bucket.name, s3_bucket.prefix, endpoint_url=s3_bucket.endpoint,
                  part_size=MIN_PART_SIZE)
        for _ in range(2)
    ]  # fmt: skip
    try:
        shared = {"store": store, "max_upload": 64 * MIB}
        async for a in make_rig(tmp_path / "a", storage=storages[0], **shared):
            async for b in make_rig(tmp_path / "b", storage=storages[1], **shared):
                b.admin = a.admin
                yield a, b
    finally:
        for storage in storages:
            await storage.close()
        await store.close()


async def test_a_tus_upload_alternating_between_nodes(nodes, s3_bucket):
    a, b = nodes
    asset = await a.new_asset()
    location = (await b.create_upload(asset["id"], len(DATA))).headers["Location"]
    offset, turn = 0, 0
    while offset < len(DATA):
        node = (a, b)[turn % 2]
        head = await node.head(location)
        assert int(head.headers["Upload-Offset"]) == offset
        answer = await node.patch(location, offset, DATA[offset : offset + MIB])
        assert answer.status == 204, await answer.text()
        offset = int(answer.headers["Upload-Offset"])
        turn += 1
    assert await a.storage.get(f"assets/{asset['id']}/{SOURCE}") == DATA
    assert s3_bucket.object_keys() == [f"{s3_bucket.prefix}/assets/{asset['id']}/{SOURCE}"]
    client = s3_bucket.server.client()
    head = client.head_object(
        Bucket=s3_bucket.name, Key=f"{s3_bucket.prefix}/assets/{asset['id']}/{SOURCE}"
    )
    assert head["ETag"].strip('"').endswith("-3")  # two 5 MiB parts and the rest
    assert not client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")
    assert [x.id for x in a.handed.ready + b.handed.ready] == [asset["id"]]


async def test_a_presigned_put_is_noticed_when_the_asset_is_read(nodes, s3_bucket):
    a, b = nodes
    body = b"straight to the bucket" * 1000
    asset = await a.new_asset(size_bytes=len(body))
    put_url = asset["upload"]["put_url"]
    assert put_url.startswith(s3_bucket.endpoint) and "X-Amz-Signature" in put_url
    unsized = await a.new_asset()
    assert unsized["upload"]["put_url"].endswith(f"/v1/assets/{unsized['id']}/file")
    read = await b.client.get(f"/v1/assets/{asset['id']}", headers=b.admin)
    assert (await read.json())["status"] == "empty"
    async with aiohttp.ClientSession() as http:
        # S3 refuses another length (it is signed; moto does not check): a file of
        # another size is not taken for the one declared either
        await http.put(yarl.URL(put_url, encoded=True), data=body + b"!")
        read = await b.client.get(f"/v1/assets/{asset['id']}", headers=b.admin)
        assert (await read.json())["status"] == "empty"
        right = await http.put(yarl.URL(put_url, encoded=True), data=body)
        assert right.status == 200, await right.text()
    read = await b.client.get(f"/v1/assets/{asset['id']}", headers=b.admin)
    assert (await read.json())["status"] == "pending"
    assert [x.id for x in b.handed.ready] == [asset["id"]]
    await a.intake.check_arrivals()  # the other node's round finds nothing more to do
    assert a.handed.ready == []


async def test_an_abandoned_upload_is_aborted_in_the_bucket(nodes, s3_bucket):
    a, b = nodes
    asset = await a.new_asset()
    location = (await a.create_upload(asset["id"], len(DATA))).headers["Location"]
    assert (await a.patch(location, 0, DATA[: 6 * MIB])).status == 204
    client = s3_bucket.server.client()
    assert client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")
    assert s3_bucket.object_keys() != []  # a staged tail
    b.clock.ahead = timedelta(days=2)
    assert await b.receiver.expire_due() == 1
    assert not client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")
    assert s3_bucket.object_keys() == []
    assert (await a.head(location)).status == 404
