"""`open_storage(url)`: the storage a `storage` setting names."""

from __future__ import annotations

import os
from pathlib import Path

from live.storage.base import Storage
from live.storage.local import LocalStorage


def open_storage(url: str | Path, *, s3_endpoint: str | None = None) -> Storage:
    """`s3://BUCKET/PREFIX` (at `s3_endpoint`, else `LIVE_S3_ENDPOINT`, else AWS)
    or a directory (created if missing). Credentials and region of a bucket come
    from the standard AWS variables; nothing is contacted until the first call."""
    text = str(url)
    if text.startswith("s3://"):
        from live.storage.s3 import S3Storage  # aiobotocore only when it is used

        endpoint = s3_endpoint or os.environ.get("LIVE_S3_ENDPOINT") or None
        return S3Storage.from_url(text, endpoint_url=endpoint)
    if "://" in text:
        raise ValueError(f"storage must be a directory or s3://BUCKET/PREFIX, got {text!r}")
    return LocalStorage(text)
