"""/vod/{asset_id}/...: only ready assets, CORS everywhere, byte ranges from local
files (FileResponse) and from storage without local files."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.recording.vod_routes import setup_vod_routes
from live.storage import LocalStorage
from live.store import SqliteStore
from live.store.models import Asset


class RemoteLike(LocalStorage):
    """Storage without local files, as S3 would be."""

    def local_path(self, key: str) -> Path | None:
        return None


@pytest.fixture
async def store(tmp_path: Path):
    instance = await SqliteStore.open(tmp_path / "db")
    yield instance
    await instance.close()


@pytest.fixture(params=["local", "remote"])
async def setup(request, store, tmp_path):
    kind = LocalStorage if request.param == "local" else RemoteLike
    storage = kind(tmp_path / "files")
    ready = await store.create_asset(Asset(livestream_id="ls", session_id="s", status="ready"))
    busy = await store.create_asset(Asset(livestream_id="ls", session_id="t"))
    body = bytes(range(256)) * 40
    for asset in (ready, busy):
        await storage.put(f"assets/{asset.id}/download.mp4", body)
        await storage.put(f"assets/{asset.id}/index.m3u8", b"#EXTM3U\n")
        await storage.put(f"assets/{asset.id}/seg_00001.m4s", body[:1000])
    app = web.Application()
    setup_vod_routes(app, store, storage)
    async with TestClient(TestServer(app)) as client:
        yield client, ready, busy, body


async def test_files_of_a_ready_asset(setup):
    client, ready, _, body = setup
    response = await client.get(f"/vod/{ready.id}/download.mp4")
    assert response.status == 200 and await response.read() == body
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response = await client.get(f"/vod/{ready.id}/index.m3u8")
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    response = await client.get(f"/vod/{ready.id}/seg_00001.m4s")
    assert response.status == 200 and len(await response.read()) == 1000


RANGES = [("bytes=10-19", 10, 20), ("bytes=10000-", 10000, 10240), ("bytes=-5", 10235, 10240)]


@pytest.mark.parametrize(("header", "start", "end"), RANGES)
async def test_ranges(setup, header, start, end):
    client, ready, _, body = setup
    response = await client.get(f"/vod/{ready.id}/download.mp4", headers={"Range": header})
    assert response.status == 206
    assert await response.read() == body[start:end]
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(body)}"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_unsatisfiable_range(setup):
    client, ready, _, _ = setup
    response = await client.get(f"/vod/{ready.id}/download.mp4", headers={"Range": "bytes=99999-"})
    assert response.status == 416


async def test_nothing_before_ready_and_nothing_unknown(setup):
    client, ready, busy, _ = setup
    for path, code in [
        (f"/vod/{busy.id}/download.mp4", "asset_not_ready"),
        ("/vod/ast_nope/download.mp4", "asset_not_found"),
        (f"/vod/{ready.id}/poster.jpg", "not_found"),  # never made
        (f"/vod/{ready.id}/index.jsonl", "not_found"),  # not a playback file
        (f"/vod/{ready.id}/..%2Flive.db", "not_found"),
    ]:
        response = await client.get(path)
        assert response.status == 404, path
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert (await response.json())["error"]["code"] == code, path


async def test_preflight(setup):
    client, ready, _, _ = setup
    response = await client.options(f"/vod/{ready.id}/download.mp4")
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Range" in response.headers["Access-Control-Allow-Headers"]
