"""POST /v1/assets: uploads start `empty` with where to send the file, imports start
`pending`; every field of the body is checked, an oversize file is refused at once,
`asset.created` is announced and the intake gets the decoded poster."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.api import build_api, request_id_middleware
from live.api.asset_requests import Poster
from live.api.assets import UploadSettings
from live.store.models import Asset
from live.store.times import parse_rfc3339, utcnow
from live.urls import PublicUrls

URLS = PublicUrls("http://live.test:8080", "rtmp://live.test:1935/live", "srt://live.test:9000")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class Intake:
    """Stands in for the uploads room: notes what it was handed."""

    def __init__(self) -> None:
        self.accepted: list[tuple[Asset, Poster | None]] = []

    async def accept(self, asset: Asset, poster: Poster | None) -> None:
        self.accepted.append((asset, poster))

    async def put_url(self, asset: Asset) -> str | None:
        return f"https://bucket.test/{asset.id}?signed" if asset.declared_size_bytes else None

    async def arrived(self, asset: Asset) -> Asset:
        return asset


@pytest.fixture
def announced() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def intake() -> Intake:
    return Intake()


@pytest.fixture
async def client(store, control, intake, announced):
    async def announce(event: str, asset: Asset) -> None:
        announced.append((event, asset.id))

    root = web.Application(middlewares=[request_id_middleware])
    api = build_api(
        store=store, control=control, urls=URLS, asset_intake=intake, asset_events=announce,
        upload_settings=UploadSettings(max_upload_bytes=1000, upload_expiry_s=3600),
    )  # fmt: skip
    root.add_subapp("/v1", api)
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


async def test_an_upload_starts_empty_with_where_to_send_the_file(
    client: TestClient, admin: dict, store, intake: Intake, announced: list
) -> None:
    before = utcnow()
    response = await client.post("/v1/assets", json={"name": "show"}, headers=admin)
    assert response.status == 201
    body = await response.json()
    asset_id = body["id"]
    assert (body["status"], body["source"], body["name"]) == ("empty", "upload", "show")
    assert body["livestream_id"] is None and body["session_id"] is None
    assert body["upload"]["tus_url"] == "http://live.test:8080/v1/uploads"
    assert body["upload"]["put_url"] == f"http://live.test:8080/v1/assets/{asset_id}/file"
    expires = parse_rfc3339(body["upload"]["expires_at"])
    assert 3590 <= (expires - before).total_seconds() <= 3700
    stored = await store.get_asset(asset_id)
    assert stored is not None and stored.status == "empty" and stored.transcode == "ladder"
    assert [(a.id, p) for a, p in intake.accepted] == [(asset_id, None)]
    assert announced == [("asset.created", asset_id)]
    again = await (await client.get(f"/v1/assets/{asset_id}", headers=admin)).json()
    assert again["upload"] == body["upload"]


async def test_a_known_size_gets_the_intakes_direct_url(client, admin, intake) -> None:
    body = await (
        await client.post("/v1/assets", json={"name": "s", "size_bytes": 1000}, headers=admin)
    ).json()
    assert body["upload"]["put_url"] == f"https://bucket.test/{body['id']}?signed"


async def test_an_import_starts_pending_and_never_shows_its_headers(
    client: TestClient, admin: dict, store, intake: Intake
) -> None:
    request = {
        "name": "imported", "origin_url": "https://media.example/a.mp4",
        "origin_http_headers": "Authorization: Bearer s3cr3t\r\nX-Trace: 1\r\n",
        "clip_start_s": 5, "clip_duration_s": 10.5, "transcode": "passthrough",
        "poster": "data:image/png;base64," + base64.b64encode(PNG).decode(),
    }  # fmt: skip
    response = await client.post("/v1/assets", json=request, headers=admin)
    assert response.status == 201
    text = await response.text()
    assert "s3cr3t" not in text
    body = await response.json()
    assert (body["status"], body["source"], body["origin_url"]) == (
        "pending",
        "url",
        "https://media.example/a.mp4",
    )
    assert (body["clip_start_s"], body["clip_duration_s"], body["transcode"]) == (
        5.0,
        10.5,
        "passthrough",
    )
    assert "upload" not in body
    stored = await store.get_asset(body["id"])
    assert stored.origin_http_headers == "Authorization: Bearer s3cr3t\nX-Trace: 1"
    assert intake.accepted[0][1] == Poster(PNG, "png")


async def test_an_oversize_file_is_refused_before_anything_is_stored(
    client, admin, store, error, intake, announced
) -> None:
    response = await client.post(
        "/v1/assets", json={"name": "big", "size_bytes": 1001}, headers=admin
    )
    await error(response, 413, "payload_too_large", "size_bytes")
    assert await store.list_assets() == ([], 0)
    assert intake.accepted == [] and announced == []


BAD: list[tuple[dict[str, Any], str]] = [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x", "colour": "red"}, "colour"),
    ({"name": "x", "origin_url": "ftp://media.example/a.mp4"}, "origin_url"),
    ({"name": "x", "origin_url": "file:///etc/passwd"}, "origin_url"),
    ({"name": "x", "origin_url": "https://a/" + "x" * 2048}, "origin_url"),
    ({"name": "x", "origin_http_headers": "A: b"}, "origin_http_headers"),
    ({"name": "x", "origin_url": "http://a/b", "origin_http_headers": "no colon"},
     "origin_http_headers"),
    ({"name": "x", "origin_url": "http://a/b", "origin_http_headers": "A: b\rX-Evil: 1"},
     "origin_http_headers"),
    ({"name": "x", "clip_start_s": -1}, "clip_start_s"),
    ({"name": "x", "clip_start_s": "5"}, "clip_start_s"),
    ({"name": "x", "clip_duration_s": 0}, "clip_duration_s"),
    ({"name": "x", "clip_duration_s": True}, "clip_duration_s"),
    ({"name": "x", "transcode": "auto"}, "transcode"),
    ({"name": "x", "size_bytes": 0}, "size_bytes"),
    ({"name": "x", "size_bytes": 1.5}, "size_bytes"),
    ({"name": "x", "poster": "http://a/b.jpg"}, "poster"),
    ({"name": "x", "poster": "data:image/gif;base64,R0lGOD=="}, "poster"),
    ({"name": "x", "poster": "data:image/jpeg;base64,@@@"}, "poster"),
    ({"name": "x", "poster": "data:image/jpeg;base64," + base64.b64encode(PNG).decode()},
     "poster"),
]  # fmt: skip


@pytest.mark.parametrize(("request_body", "param"), BAD)
async def test_a_bad_field_is_400_naming_it(
    client, admin, error, store, request_body, param
) -> None:
    response = await client.post("/v1/assets", json=request_body, headers=admin)
    expected = "parameter_missing" if request_body == {} else "invalid_parameter_value"
    await error(response, 400, expected, param)
    assert await store.list_assets() == ([], 0)


async def test_a_read_key_cannot_create(client, reader, error) -> None:
    await error(await client.post("/v1/assets", json={"name": "x"}, headers=reader), 403,
                "forbidden")  # fmt: skip
