"""/vod/{asset_id}/...: only ready assets, CORS everywhere, byte ranges from local
files (FileResponse) and from storage without local files (S3 on moto's server,
run under the e2e lock), and presigned redirects."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import m3u8
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from live.recording.vod_routes import setup_vod_routes
from live.storage import LocalStorage, Storage
from live.storage.s3 import S3Storage
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


def make_storage(request, kind: str, tmp_path: Path) -> Storage:
    if kind == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return S3Storage(bucket.name, bucket.prefix, endpoint_url=bucket.endpoint)
    return (LocalStorage if kind == "local" else RemoteLike)(tmp_path / "files")


@pytest.fixture(params=["local", "remote", "s3"])
async def setup(request, store, tmp_path):
    storage = make_storage(request, request.param, tmp_path)
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
    await storage.close()


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
    client, ready, _, body = setup
    response = await client.get(f"/vod/{ready.id}/download.mp4", headers={"Range": "bytes=99999-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(body)}"


async def test_head_gives_the_length_without_the_body(setup):
    client, ready, _, body = setup
    response = await client.head(f"/vod/{ready.id}/download.mp4")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(body))
    assert await response.read() == b""


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


PLAYLIST = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    '#EXT-X-MAP:URI="init_1.mp4"\n#EXTINF:4.00000,\nseg_00001.m4s\n'
    "#EXT-X-DISCONTINUITY\n"
    '#EXT-X-MAP:URI="init_2.mp4"\n#EXTINF:2.00000,\nseg_00002.m4s\n#EXT-X-ENDLIST\n'
)


@pytest.fixture(params=["s3", "local"])
async def redirecting(request, store, tmp_path):
    storage = make_storage(request, request.param, tmp_path)
    asset = await store.create_asset(Asset(livestream_id="ls", session_id="s", status="ready"))
    prefix = f"assets/{asset.id}/"
    objects = {"index.m3u8": PLAYLIST.encode(), "download.mp4": b"M" * 5000,
               "init_1.mp4": b"I1", "init_2.mp4": b"I2", "seg_00001.m4s": b"S1",
               "seg_00002.m4s": b"S2", "sprite.vtt": b"WEBVTT\n"}  # fmt: skip
    for name, data in objects.items():
        await storage.put(prefix + name, data)
    app = web.Application()
    setup_vod_routes(app, store, storage, delivery="redirect", url_expiry_s=600)
    async with TestClient(TestServer(app)) as client:
        yield request.param, client, asset, objects
    await storage.close()


async def test_redirect_sends_media_to_the_bucket_and_keeps_playlists(redirecting):
    kind, client, asset, objects = redirecting
    base = f"/vod/{asset.id}"
    response = await client.get(f"{base}/download.mp4", allow_redirects=False)
    if kind == "local":  # nothing to presign: served by the node
        assert response.status == 200 and await response.read() == objects["download.mp4"]
        assert (await (await client.get(f"{base}/index.m3u8")).text()) == PLAYLIST
        return
    assert response.status == 302
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    location = URL(response.headers["Location"])
    assert location.path.endswith(f"/assets/{asset.id}/download.mp4")
    assert location.query["X-Amz-Expires"] == "600"
    assert location.query["response-content-disposition"].endswith(f"{asset.id}.mp4")
    async with aiohttp.ClientSession() as session:
        async with session.get(location) as fetched:
            assert await fetched.read() == objects["download.mp4"]
        async with session.get(location, headers={"Range": "bytes=10-19"}) as fetched:
            assert fetched.status == 206 and await fetched.read() == b"M" * 10

    # the playlist comes from the node, every URI an absolute presigned URL
    response = await client.get(f"{base}/index.m3u8", allow_redirects=False)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    playlist = m3u8.loads(await response.text())
    maps = [segment.init_section.uri for segment in playlist.segments]
    uris = [segment.uri for segment in playlist.segments]
    assert [s.discontinuity for s in playlist.segments] == [False, True]
    async with aiohttp.ClientSession() as session:
        for uri, name in zip(maps + uris, ["init_1.mp4", "init_2.mp4", "seg_00001.m4s",
                                           "seg_00002.m4s"], strict=True):  # fmt: skip
            assert URL(uri).query["X-Amz-Expires"] == "600"
            async with session.get(uri) as fetched:
                assert await fetched.read() == objects[name]
    # the WebVTT names the sprite relatively: served by the node
    response = await client.get(f"{base}/sprite.vtt", allow_redirects=False)
    assert response.status == 200 and await response.read() == b"WEBVTT\n"


MULTIVARIANT = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,'
    'URI="audio.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",'
    'AUDIO="audio"\n360p.m3u8\n'
)
RENDITION = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    '#EXT-X-MAP:URI="360p_init.mp4"\n#EXTINF:2.000000,\n360p_00000.m4s\n#EXT-X-ENDLIST\n'
)


async def test_redirect_keeps_an_uploads_rendition_playlists_on_the_node(
    request, store, tmp_path
) -> None:
    storage = make_storage(request, "s3", tmp_path)
    asset = await store.create_asset(Asset(source="upload", status="ready"))
    prefix = f"assets/{asset.id}/"
    objects = {"index.m3u8": MULTIVARIANT.encode(), "360p.m3u8": RENDITION.encode(),
               "360p_init.mp4": b"I", "360p_00000.m4s": b"S"}  # fmt: skip
    for name, data in objects.items():
        await storage.put(prefix + name, data)
    app = web.Application()
    setup_vod_routes(app, store, storage, delivery="redirect", url_expiry_s=600)
    try:
        async with TestClient(TestServer(app)) as client:
            index = await client.get(f"/vod/{asset.id}/index.m3u8", allow_redirects=False)
            # rendition playlists stay relative: the node serves (and signs) them
            assert index.status == 200 and await index.text() == MULTIVARIANT
            rendition = await client.get(f"/vod/{asset.id}/360p.m3u8", allow_redirects=False)
            assert rendition.status == 200
            playlist = m3u8.loads(await rendition.text())
            (segment,) = playlist.segments
            async with aiohttp.ClientSession() as session:
                for uri, name in ((segment.init_section.uri, "360p_init.mp4"),
                                  (segment.uri, "360p_00000.m4s")):  # fmt: skip
                    assert URL(uri).query["X-Amz-Expires"] == "600"
                    async with session.get(uri) as fetched:
                        assert await fetched.read() == objects[name]
    finally:
        await storage.close()
