"""GET/DELETE /v1/assets: API.md's asset object, filters, paging, errors, scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.api import build_api, request_id_middleware
from live.api.assets import ASSET_FILES
from live.store.models import Asset
from live.urls import PublicUrls

URLS = PublicUrls("http://live.test:8080", "rtmp://live.test:1935/live", "srt://live.test:9000")

FIELDS = {"id", "name", "source", "livestream_id", "session_id", "status", "error",
          "progress", "duration_s", "size_bytes", "hls_url", "mp4_url", "poster_url",
          "sprite_url", "thumbnails_vtt_url", "origin_url", "clip_start_s", "clip_duration_s",
          "transcode", "renditions", "original", "created_at", "ready_at"}  # fmt: skip


class Files:
    """Stands in for the recording service: notes which assets lost their files."""

    def __init__(self, store) -> None:
        self.store = store
        self.deleted: list[str] = []

    async def delete(self, asset: Asset) -> None:
        self.deleted.append(asset.id)
        await self.store.delete_asset(asset.id)


@pytest.fixture
def files(store) -> Files:
    return Files(store)


@pytest.fixture
async def assets_client(store, control, files):
    root = web.Application(middlewares=[request_id_middleware])
    api = build_api(store=store, control=control, urls=URLS)
    api[ASSET_FILES] = files
    root.add_subapp("/v1", api)
    async with TestClient(TestServer(root)) as client:
        yield client


async def _asset(store, livestream_id="ls_a", hours=0, **fields) -> Asset:
    created = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=hours)
    return await store.create_asset(
        Asset(livestream_id=livestream_id, session_id=f"ses_{hours}", created_at=created, **fields)
    )


async def test_get_asset_has_exactly_the_fields_of_api_md(assets_client, store, admin):
    ready_at = datetime(2026, 3, 1, 1, tzinfo=UTC)
    asset = await _asset(store, status="ready", duration_s=3621.4, size_bytes=1357,
                         has_poster=True, ready_at=ready_at)  # fmt: skip
    response = await assets_client.get(f"/v1/assets/{asset.id}", headers=admin)
    assert response.status == 200
    body = await response.json()
    assert set(body) == FIELDS
    base = f"http://live.test:8080/vod/{asset.id}"
    assert body == {
        "id": asset.id, "name": "", "source": "recording", "livestream_id": "ls_a",
        "session_id": "ses_0", "status": "ready", "error": None, "progress": 0,
        "duration_s": 3621.4, "size_bytes": 1357,
        "origin_url": None, "clip_start_s": None, "clip_duration_s": None,
        "transcode": "ladder", "renditions": [], "original": None,
        "hls_url": f"{base}/index.m3u8", "mp4_url": f"{base}/download.mp4",
        "poster_url": f"{base}/poster.jpg", "sprite_url": f"{base}/sprite.jpg",
        "thumbnails_vtt_url": f"{base}/sprite.vtt",
        "created_at": "2026-03-01T00:00:00Z", "ready_at": "2026-03-01T01:00:00Z",
    }  # fmt: skip


async def test_audio_only_asset_has_no_poster(assets_client, store, reader):
    asset = await _asset(store, status="ready", has_poster=False)
    body = await (await assets_client.get(f"/v1/assets/{asset.id}", headers=reader)).json()
    assert body["poster_url"] is None
    assert body["sprite_url"] is None and body["thumbnails_vtt_url"] is None


async def test_failed_asset_carries_its_error(assets_client, store, reader):
    error = {"code": "processing_failed", "message": "storage: the disk is full"}
    asset = await _asset(store, status="failed", error=error)
    body = await (await assets_client.get(f"/v1/assets/{asset.id}", headers=reader)).json()
    assert (body["status"], body["error"]) == ("failed", error)


async def test_list_newest_first_filtered_and_paged(assets_client, store, reader, error):
    made = [await _asset(store, "ls_a" if n % 2 else "ls_b", hours=n) for n in range(5)]
    body = await (await assets_client.get("/v1/assets", headers=reader)).json()
    assert body["total"] == 5 and (body["page"], body["page_size"]) == (1, 20)
    assert [a["id"] for a in body["data"]] == [a.id for a in reversed(made)]
    response = await assets_client.get("/v1/assets?livestream_id=ls_a&page_size=1&page=2",
                                       headers=reader)  # fmt: skip
    body = await response.json()
    assert body["total"] == 2 and [a["id"] for a in body["data"]] == [made[1].id]
    response = await assets_client.get("/v1/assets?page_size=101", headers=reader)
    await error(response, 400, "page_size_more_than_max", "page_size")
    response = await assets_client.get("/v1/assets?livestream_id=", headers=reader)
    await error(response, 400, "invalid_parameter_value", "livestream_id")


async def test_unknown_asset_is_404(assets_client, admin, error):
    await error(await assets_client.get("/v1/assets/ast_nope", headers=admin),
                404, "asset_not_found", "id")  # fmt: skip
    await error(await assets_client.delete("/v1/assets/ast_nope", headers=admin),
                404, "asset_not_found", "id")  # fmt: skip


async def test_delete_removes_files_and_record(assets_client, store, admin, files):
    asset = await _asset(store, status="ready")
    response = await assets_client.delete(f"/v1/assets/{asset.id}", headers=admin)
    assert response.status == 204
    assert files.deleted == [asset.id]
    assert await store.get_asset(asset.id) is None


async def test_a_read_key_cannot_delete(assets_client, store, reader, error, files):
    asset = await _asset(store, status="ready")
    await error(await assets_client.delete(f"/v1/assets/{asset.id}", headers=reader),
                403, "forbidden")  # fmt: skip
    assert files.deleted == [] and await store.get_asset(asset.id) is not None


async def test_assets_need_a_key(assets_client, error):
    await error(await assets_client.get("/v1/assets"), 401, "unauthorized")
