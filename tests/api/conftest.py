"""Fixtures for the REST API tests: the /v1 app mounted in a root app carrying the
request-id middleware, as the server wires it, over a SQLite store in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.api import build_api, request_id_middleware
from live.control import LiveSession
from live.store import SqliteStore
from live.urls import PublicUrls

URLS = PublicUrls(
    http_base="http://live.test:8080",
    rtmp_base="rtmp://live.test:1935/live",
    srt_base="srt://live.test:9000",
    rtmps_base="rtmps://live.test:1936/live",
)


class RecordingControl:
    """A LiveControl that records disconnects and serves canned live sessions."""

    def __init__(self) -> None:
        self.disconnects: list[tuple[str, str]] = []
        self.sessions: dict[str, LiveSession] = {}

    def current_session(self, livestream_id: str) -> LiveSession | None:
        return self.sessions.get(livestream_id)

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        self.disconnects.append((livestream_id, end_reason))
        return self.sessions.pop(livestream_id, None) is not None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = await SqliteStore.open(tmp_path)
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _explode(request: web.Request) -> web.Response:
    raise RuntimeError("root handler failure with a secret detail")


@pytest.fixture
async def client(store: SqliteStore, control: RecordingControl) -> AsyncIterator[TestClient]:
    root = web.Application(middlewares=[request_id_middleware])
    root.router.add_get("/healthz", _healthz)
    root.router.add_get("/explode", _explode)
    root.add_subapp("/v1", build_api(store=store, control=control, urls=URLS))
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


@pytest.fixture
async def admin(store: SqliteStore) -> dict[str, str]:
    """Headers with an admin key."""
    _, plaintext = await store.create_api_key("admin", "admin")
    return {"X-API-Key": plaintext}


@pytest.fixture
async def reader(store: SqliteStore) -> dict[str, str]:
    """Headers with a read-scope key."""
    _, plaintext = await store.create_api_key("reader", "read")
    return {"Authorization": f"Bearer {plaintext}"}


async def expect_error(
    response: Any, status: int, code: str, param: str | type[Ellipsis] | None = ...
) -> dict[str, Any]:
    """Assert API.md's error shape; returns the error object."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "param"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if param is not ...:
        assert error["param"] == param
    return error


@pytest.fixture
def error() -> Any:
    """The `expect_error` checker, as a fixture so test files need no imports."""
    return expect_error
