"""Imports by URL from an HTTP origin the test runs: the header given in
`origin_http_headers` is sent, the file lands whole, and every way a fetch can go
wrong ends as the asset's error object, announced as `asset.failed`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from uploads_testing import Handed, Rig

from live.recording.layout import SOURCE
from live.storage import LocalStorage
from live.store import SqliteStore
from live.store.models import Asset
from live.uploads.imports import ImportSettings
from live.uploads.intake import UploadIntake

DATA = bytes(range(251)) * 4000  # 1 004 000 bytes
SECRET = "Bearer origin-secret"
LIMIT = 2_000_000


async def _file(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Authorization") != SECRET or request.headers.get("X-Extra") != "1":
        return web.Response(status=403, text="who are you")
    return web.Response(body=DATA, content_type="video/mp4")


async def _redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    target = "/file" if hops == 0 else f"/redirect/{hops - 1}"
    raise web.HTTPFound(target)


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"b" * (LIMIT + 1))


async def _big_unannounced(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(LIMIT // 65536 + 5):
        await response.write(b"c" * 65536)
    await response.write_eof()
    return response


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    return web.Response()


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/file", _file)
    app.router.add_get("/redirect/{hops}", _redirect)
    app.router.add_get("/big", _big)
    app.router.add_get("/big-unannounced", _big_unannounced)
    app.router.add_get("/hang", _hang)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def imports(tmp_path: Path) -> AsyncIterator[tuple[UploadIntake, SqliteStore, Handed]]:
    store = await SqliteStore.open(tmp_path / "db")
    handed = Handed()
    intake = UploadIntake(
        store, LocalStorage(tmp_path / "storage"), max_upload_bytes=LIMIT,
        imports=ImportSettings(
            max_bytes=LIMIT, timeout_s=1.5, connect_timeout_s=1, max_redirects=3
        ),
        on_source_ready=handed.source_ready, announce=handed.announce,
    )  # fmt: skip
    try:
        yield intake, store, handed
    finally:
        await intake.close()
        await store.close()


HEADERS = f"Authorization: {SECRET}\nX-Extra: 1"


async def _import(
    intake: UploadIntake, store: SqliteStore, url: str, headers: str | None = HEADERS
):
    asset = await store.create_asset(
        Asset(source="url", status="pending", origin_url=url, origin_http_headers=headers)
    )
    await intake.accept(asset, None)
    await intake.importer.wait()
    return await store.get_asset(asset.id)


async def test_an_import_through_the_api_sends_the_headers_and_lands_whole(rig: Rig, origin: str):
    asset = await rig.new_asset(origin_url=f"{origin}/file", origin_http_headers=HEADERS)
    assert asset["status"] == "pending" and asset["source"] == "url" and "upload" not in asset
    await rig.intake.importer.wait()
    assert await rig.storage.get(f"assets/{asset['id']}/{SOURCE}") == DATA
    assert [a.id for a in rig.handed.ready] == [asset["id"]]
    assert rig.handed.announced == [("asset.created", rig.handed.announced[0][1])]


async def test_redirects_are_followed_up_to_the_bound(imports, origin: str):
    intake, store, handed = imports
    fetched = await _import(intake, store, f"{origin}/redirect/2")  # 3 redirects
    assert fetched.status == "pending" and len(handed.ready) == 1
    too_many = await _import(intake, store, f"{origin}/redirect/3")
    assert too_many.status == "failed"
    assert too_many.error["code"] == "origin_unreachable"
    assert "redirected more than 3 times" in too_many.error["message"]


@pytest.mark.parametrize(
    ("path", "headers", "code", "words"),
    [
        ("/file", None, "origin_status", "403"),  # the header is what opens the door
        ("/nothing-here", HEADERS, "origin_status", "404"),
        ("/big", HEADERS, "file_too_large", "limit"),
        ("/big-unannounced", HEADERS, "file_too_large", "limit"),
        ("/hang", HEADERS, "origin_unreachable", "did not answer in time"),
    ],
)
async def test_failures_become_the_assets_error(imports, origin, path, headers, code, words):
    intake, store, handed = imports
    failed = await _import(intake, store, origin + path, headers)
    assert failed.status == "failed"
    assert failed.error["code"] == code and words in failed.error["message"]
    assert [(event, a.id) for event, a in handed.announced] == [("asset.failed", failed.id)]
    assert handed.ready == []
    assert await intake.storage.list("") == []  # nothing half-written is left


async def test_an_origin_that_refuses_connections(imports):
    intake, store, _ = imports
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    failed = await _import(intake, store, f"http://127.0.0.1:{port}/file")
    assert failed.error["code"] == "origin_unreachable"


async def test_unfinished_imports_are_fetched_again_after_a_restart(imports, origin: str):
    intake, store, handed = imports
    waiting = await store.create_asset(
        Asset(
            source="url", status="pending", origin_url=f"{origin}/file", origin_http_headers=HEADERS
        )
    )
    landed = await store.create_asset(
        Asset(source="url", status="pending", origin_url=f"{origin}/file")
    )
    await intake.storage.put(f"assets/{landed.id}/{SOURCE}", b"already here")
    upload = await store.create_asset(Asset(source="upload", status="pending"))
    await intake.resume()
    await intake.importer.wait()
    assert sorted(a.id for a in handed.ready) == sorted([waiting.id, landed.id])
    assert await intake.storage.get(f"assets/{waiting.id}/{SOURCE}") == DATA
    assert await intake.storage.get(f"assets/{landed.id}/{SOURCE}") == b"already here"
    assert upload.id not in [a.id for a in handed.ready]
