"""`api_max_body_bytes`: a body over the limit is refused with 413 before it is read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import URLS

from live.api import build_api, request_id_middleware
from live.config import ConfigError, Settings
from live.limits import LimitHits
from live.store import SqliteStore

LIMIT = 4096


@pytest.fixture
async def server(store: SqliteStore, control: Any) -> AsyncIterator[TestServer]:
    root = web.Application(middlewares=[request_id_middleware])
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS, max_body_bytes=LIMIT))
    async with TestServer(root) as test_server:
        yield test_server


async def _answer(server: TestServer, admin: dict, length: int, sent: bytes) -> tuple[int, dict]:
    """Announce `length` bytes, send only `sent`, and read the answer: it must come
    without the rest of the body."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        head = (
            f"POST /v1/livestreams HTTP/1.1\r\nHost: x\r\nX-API-Key: {admin['X-API-Key']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        writer.write(head.encode() + sent)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        headers = {}
        while (line := await asyncio.wait_for(reader.readline(), 5)) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
        return int(status_line.split()[1]), json.loads(body)
    finally:
        writer.close()


async def test_an_announced_body_over_the_limit_is_refused_before_it_is_sent(server, admin):
    status, body = await _answer(server, admin, 10 * 1024**3, b'{"name": "')
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert str(LIMIT) in body["error"]["message"]


async def test_a_body_at_the_limit_is_read(server, admin):
    raw = b'{"name": "' + b"x" * (LIMIT - 12) + b'"}'
    assert len(raw) == LIMIT
    status, body = await _answer(server, admin, len(raw), raw)
    assert status == 400 and body["error"]["param"] == "name"  # read and judged: too long


def test_the_setting_defaults_to_10_mb_and_is_checked():
    assert Settings().api_max_body_bytes == 10 * 1024 * 1024
    with pytest.raises(ConfigError):
        Settings(api_max_body_bytes=10).validate()


@pytest.fixture
async def slow_server(store: SqliteStore, control: Any) -> AsyncIterator[TestServer]:
    root = web.Application(middlewares=[request_id_middleware])
    hits = LimitHits()
    api = build_api(store=store, control=control, urls=URLS, body_timeout_s=0.5, limit_hits=hits)
    root.add_subapp("/v1", api)
    async with TestServer(root) as test_server:
        test_server.hits = hits  # type: ignore[attr-defined]
        yield test_server


async def test_a_body_that_stops_arriving_is_refused_with_408(slow_server, admin):
    status, body = await _answer(slow_server, admin, 200, b'{"name": "slo')
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert "0.5 s" in body["error"]["message"]
    assert slow_server.hits.counts["http_body_timeout_s"] == 1
    # a whole body is read as before
    length = len(whole := b'{"name": "quick"}')
    status, body = await _answer(slow_server, admin, length, whole)
    assert status == 201 and body["name"] == "quick"
