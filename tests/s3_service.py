"""moto's S3 in server mode on a free loopback port, for any test that needs a bucket.

`s3_server` (one per test session) is the endpoint; `s3_bucket` is a fresh, empty
bucket per test, with the credentials the AWS clients need set in the environment
(and in `S3Bucket.env`, for a server started as a subprocess), removed with
everything in it at teardown. Registered in tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_numbers = itertools.count(1)


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self):
        """A boto3 client, to look at the bucket from outside the code under test."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    name: str
    prefix: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def url(self) -> str:
        """What `--storage` takes."""
        return f"s3://{self.name}/{self.prefix}"

    @property
    def env(self) -> dict[str, str]:
        """What a `live serve` subprocess needs to reach the bucket."""
        return {**CREDENTIALS, "LIVE_S3_ENDPOINT": self.endpoint}

    def object_keys(self) -> list[str]:
        """Every key in the bucket (with the prefix), listed with boto3."""
        pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer  # slow to import: only where it runs

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = S3Bucket(s3_server, f"test-bucket-{next(_numbers)}", "rec/ordings")
    client = s3_server.client()
    client.create_bucket(Bucket=bucket.name)
    try:
        yield bucket
    finally:
        keys = bucket.object_keys()
        for start in range(0, len(keys), 1000):
            objects = [{"Key": key} for key in keys[start : start + 1000]]
            client.delete_objects(Bucket=bucket.name, Delete={"Objects": objects})
        client.delete_bucket(Bucket=bucket.name)
