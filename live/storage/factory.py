"""`open_storage(url)`: the storage a `storage` setting names."""

from __future__ import annotations

import os
from pathlib import Path

from live.storage.base import Storage, check_key
from live.storage.local import LocalStorage


def parse_s3_url(url: str) -> tuple[str, str]:
    """ "s3://bucket/some/prefix" → ("bucket", "some/prefix"); ValueError if malformed."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def open_storage(url: str | Path, *, s3_endpoint: str | None = None) -> Storage:
    """`s3://BUCKET/PREFIX` (at `s3_endpoint`, else `LIVE_S3_ENDPOINT`, else AWS)
    or a directory (created if missing). Credentials and region of a bucket come
    from the standard AWS variables; nothing is contacted until the first call."""
    text = str(url)
    if text.startswith("s3://"):
        from live.storage.s3 import S3Storage  # aiobotocore only when it is used

        endpoint = s3_endpoint or os.environ.get("LIVE_S3_ENDPOINT") or None
        bucket, prefix = parse_s3_url(text)
        return S3Storage(bucket, prefix, endpoint_url=endpoint)
    if "://" in text:
        raise ValueError(f"storage must be a directory or s3://BUCKET/PREFIX, got {text!r}")
    return LocalStorage(text)
