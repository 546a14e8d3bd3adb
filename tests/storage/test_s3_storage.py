"""S3Storage beyond the contract: URLs, presigned GETs, errors, the factory."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from live.storage import LocalStorage, StorageError, open_storage
from live.storage.factory import parse_s3_url
from live.storage.s3 import S3Storage


def test_s3_urls():
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    for bad in ("s3://", "s3:///x", "s3://b/../x", "http://b/x"):
        with pytest.raises(ValueError):
            parse_s3_url(bad)


def test_open_storage(tmp_path, monkeypatch):
    local = open_storage(tmp_path / "rec")
    assert isinstance(local, LocalStorage) and (tmp_path / "rec").is_dir()
    monkeypatch.setenv("LIVE_S3_ENDPOINT", "http://127.0.0.1:9")
    remote = open_storage("s3://media/vod/")
    assert isinstance(remote, S3Storage)
    assert (remote.bucket, remote.prefix, remote.endpoint_url) == (
        "media", "vod", "http://127.0.0.1:9")  # fmt: skip
    assert open_storage("s3://m", s3_endpoint="http://x:1").endpoint_url == "http://x:1"
    with pytest.raises(ValueError, match="directory or s3://"):
        open_storage("ftp://host/dir")


async def test_presigned_get_carries_its_expiry_and_fetches_the_object(s3_bucket):
    storage = S3Storage(s3_bucket.name, s3_bucket.prefix, endpoint_url=s3_bucket.endpoint)
    try:
        await storage.put("assets/a/download.mp4", b"movie")
        before = datetime.now(UTC).replace(microsecond=0)
        url = await storage.presigned_get(
            "assets/a/download.mp4", 300, content_type="video/mp4", download_name="a.mp4"
        )
        after = datetime.now(UTC)
    finally:
        await storage.close()
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == f"/{s3_bucket.name}/{s3_bucket.prefix}/assets/a/download.mp4"
    # SigV4 query signing: the expiry is ours, counted from the signing time
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "300"
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= after
    assert query["X-Amz-Credential"].startswith("testing/")
    assert len(query["X-Amz-Signature"]) == 64
    assert query["response-content-type"] == "video/mp4"
    assert query["response-content-disposition"] == "attachment; filename*=UTF-8''a.mp4"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"movie"
        assert response.headers["Content-Type"] == "video/mp4"


async def test_local_storage_hands_out_no_presigned_urls(tmp_path):
    assert await LocalStorage(tmp_path).presigned_get("a", 60) is None


async def test_a_missing_bucket_is_a_clear_error(s3_bucket):
    storage = S3Storage("no-such-bucket", "x", endpoint_url=s3_bucket.endpoint)
    try:
        with pytest.raises(StorageError, match=r"s3://no-such-bucket/k: NoSuchBucket"):
            await storage.put("k", b"x")
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await storage.list("")
    finally:
        await storage.close()


async def test_an_unreachable_endpoint_is_a_clear_error(s3_bucket):
    storage = S3Storage("b", endpoint_url="http://127.0.0.1:9")  # nothing listens there
    try:
        with pytest.raises(StorageError, match=r"cannot write s3://b/k: .*127\.0\.0\.1:9"):
            await storage.put("k", b"x")
    finally:
        await storage.close()
