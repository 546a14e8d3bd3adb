"""POST /whip judges the key before anything else a client sent (type, body)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.broadcast.manager import SessionRules, StreamManager
from live.ingest.whip import WhipServer
from live.ingest.whip.server import WhipSettings

GOOD_KEY = "sk_good"


class _Store:
    async def get_livestream_by_stream_key(self, key: str):
        return SimpleNamespace(id="ls_1", transcode="auto") if key == GOOD_KEY else None


@pytest.fixture
async def client():
    server = WhipServer(StreamManager(_Store(), None, SessionRules()), WhipSettings())
    app = web.Application()
    server.setup_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def _post(client: TestClient, key: str | None, content_type: str, body: bytes):
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    response = await client.post("/whip", data=body, headers=headers)
    return response.status, json.loads(await response.read())["error"]["code"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/sdp", b"\xff\xfe not even text"),
        ("application/sdp", b"v=0\r\nthis is not SDP"),
        ("application/json", b"{}"),
        ("", b""),
    ],
)
async def test_a_wrong_or_missing_key_is_401_whatever_the_body(client, content_type, body):
    assert await _post(client, "sk_wrong", content_type, body) == (401, "unauthorized")
    assert await _post(client, None, content_type, body) == (401, "unauthorized")


async def test_with_a_good_key_the_offer_is_judged(client):
    assert await _post(client, GOOD_KEY, "application/json", b"{}") == (
        415, "unsupported_media_type",
    )  # fmt: skip
    assert await _post(client, GOOD_KEY, "application/sdp", b"\xff\xfe") == (400, "invalid_sdp")
