"""A real redis-server for the tests: one per test session on a free loopback port,
without persistence, in its own temp dir, stopped by PID at teardown (failed runs
included). Fixtures: `redis_server` (the session's server), `redis_url` (a URL to a
database flushed for each test) and `redis_client` (an asyncio client of it). Import
them into a conftest to use them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_answering(process: subprocess.Popen[bytes], port: int) -> bool:
    """True once the server answers PING; False if it exited (the port was taken)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
    finally:
        client.close()
    raise RuntimeError(f"redis-server on port {port} did not answer in {START_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    workdir = tempfile.mkdtemp(prefix="live-redis-")
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(5):  # another process may take the free port first
            port = _free_port()
            process = subprocess.Popen(
                [
                    "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", workdir,
                    "--databases", "16", "--loglevel", "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if _wait_until_answering(process, port):
                break
            _stop(process)
            process = None
        if process is None:
            raise RuntimeError("redis-server would not start on a free port")
        yield RedisServer("127.0.0.1", port)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """Database 0 of the session's server, emptied before the test."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port, db=0)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server.url(0)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[AsyncRedis]:
    """An asyncio client of `redis_url` (raw bytes), closed after the test."""
    client = AsyncRedis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
