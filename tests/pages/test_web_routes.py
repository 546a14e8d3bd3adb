"""The pages' routes without a browser: headers that fit each page, the hls.js source
(vendored, CDN or missing), the player's status answer, and the static file server
refusing anything outside its folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.config import ConfigError, Settings
from live.hls.stream import HlsRegistry, HlsStream, Rendition
from live.hls.window import HlsWindow
from live.web import WebSettings, setup_web_routes, stream_status
from live.web.routes import MISSING_JS_NOTICE

PB = "pb_abcdefghijklmnop"


def _vendor(tmp_path: Path, installed: bool) -> Path:
    vendor = tmp_path / "vendor"
    (vendor / "node_modules/hls.js/dist").mkdir(parents=True)
    (vendor / "node_modules/tus-js-client/dist").mkdir(parents=True)
    dependencies = {"hls.js": "~1.7.4", "tus-js-client": "~4.3.1"}
    (vendor / "package.json").write_text(json.dumps({"dependencies": dependencies}))
    if installed:
        (vendor / "node_modules/hls.js/dist/hls.min.js").write_text("window.Hls = 1;")
        (vendor / "node_modules/tus-js-client/dist/tus.min.js").write_text("window.tus = 1;")
    return vendor


async def _client(settings: WebSettings, status=None) -> TestClient:
    app = web.Application()
    setup_web_routes(app, settings, status or (lambda pb: {"playback_id": pb, "live": False}))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def vendored(tmp_path):
    client = await _client(WebSettings(vendor_dir=_vendor(tmp_path, installed=True)))
    yield client
    await client.close()


async def test_player_may_be_framed_admin_and_publish_may_not(vendored):
    player = await vendored.get(f"/play/{PB}")
    assert player.status == 200
    policy = player.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in policy
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    assert "X-Frame-Options" not in player.headers
    assert player.headers["X-Content-Type-Options"] == "nosniff"
    assert player.headers["Permissions-Policy"] == "camera=(), microphone=()"
    for path in ("/admin", "/publish"):
        page = await vendored.get(path)
        assert page.status == 200
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    publish = await vendored.get("/publish")
    assert publish.headers["Permissions-Policy"] == "camera=(self), microphone=(self)"
    assert (await vendored.get("/vod/ast_abc123")).status == 200


async def test_pages_load_the_vendored_hls_js_and_it_is_served(vendored):
    text = await (await vendored.get(f"/play/{PB}")).text()
    assert '<meta name="hls-src" content="/web/vendor/hls.js/dist/hls.min.js">' in text
    assert MISSING_JS_NOTICE not in text
    script = await vendored.get("/web/vendor/hls.js/dist/hls.min.js")
    assert script.status == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    own = await vendored.get("/web/js/player.js")
    assert own.status == 200 and own.headers["Content-Type"].startswith("text/javascript")
    assert (await vendored.get("/web/css/site.css")).headers["Content-Type"].startswith("text/css")


async def test_the_dashboard_loads_the_vendored_tus_client_and_it_is_served(vendored):
    text = await (await vendored.get("/admin")).text()
    assert '<meta name="tus-src" content="/web/vendor/tus-js-client/dist/tus.min.js">' in text
    script = await vendored.get("/web/vendor/tus-js-client/dist/tus.min.js")
    assert script.status == 200 and await script.text() == "window.tus = 1;"
    assert script.headers["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "/web/../routes.py",
        "/web/%2e%2e/routes.py",
        "/web/vendor/../package.json",
        "/web/.hidden",
        "/web/js/nothing.js",
        "/web/vendor/hls.js/../../package.json",
        "/web/vendor/tus-js-client/%2e%2e/%2e%2e/package.json",
        "/web/vendor/tus-js-client/dist/..%2f..%2f..%2fpackage.json",
    ],
)
async def test_static_files_stay_inside_their_folders(vendored, path):
    response = await vendored.get(path)
    assert response.status == 404


async def test_bad_ids_are_not_found(vendored):
    assert (await vendored.get("/play/not-a-playback-id")).status == 404
    assert (await vendored.get("/vod/ls_abc")).status == 404
    assert (await vendored.get("/play/bad/status")).status == 404


async def test_without_hls_js_or_a_cdn_the_page_says_what_is_missing(tmp_path):
    client = await _client(WebSettings(vendor_dir=_vendor(tmp_path, installed=False)))
    try:
        text = await (await client.get(f"/play/{PB}")).text()
        assert '<meta name="hls-src" content="">' in text
        assert MISSING_JS_NOTICE in text
        assert '<meta name="tus-src" content="">' in await (await client.get("/admin")).text()
        assert "scripts/setup.sh" in MISSING_JS_NOTICE and "web_js_url" in MISSING_JS_NOTICE
    finally:
        await client.close()


async def test_a_cdn_setting_loads_the_same_version_from_it(tmp_path):
    settings = WebSettings(
        js_url="https://cdn.example.net/npm/", vendor_dir=_vendor(tmp_path, installed=False)
    )
    client = await _client(settings)
    try:
        response = await client.get("/admin")
        text = await response.text()
        assert 'content="https://cdn.example.net/npm/hls.js@1.7.4/dist/hls.min.js"' in text
        assert 'content="https://cdn.example.net/npm/tus-js-client@4.3.1/dist/tus.min.js"' in text
        assert (
            "script-src 'self' https://cdn.example.net;"
            in response.headers["Content-Security-Policy"]
        )
        assert MISSING_JS_NOTICE not in text
    finally:
        await client.close()


def test_web_js_url_must_be_a_url():
    with pytest.raises(ConfigError, match="web_js_url"):
        Settings(web_js_url="cdn.example.net").validate()
    Settings(web_js_url="https://cdn.jsdelivr.net/npm").validate()


async def test_status_says_live_only_between_the_first_part_and_the_end(tmp_path):
    registry = HlsRegistry()
    viewers = {PB: 3}
    window = HlsWindow(target_duration=1, part_target=0.2, window_segments=7)
    assert stream_status(registry, viewers.get, PB) == {
        "playback_id": PB,
        "live": False,
        "viewers": 0,
        "latency_mode": None,
    }
    registry.register(HlsStream(PB, [Rendition("source", window, bandwidth=1_000_000)]))
    assert stream_status(registry, viewers.get, PB)["live"] is False  # nothing to play yet
    window.set_init(b"init")
    window.start_segment()
    window.add_part(b"part", 0.2, True)
    status = stream_status(registry, viewers.get, PB)
    assert status["live"] is True and status["viewers"] == 3
    assert status["latency_mode"] == "low"
    window.end()
    assert stream_status(registry, viewers.get, PB)["live"] is False

    client = await _client(
        WebSettings(vendor_dir=_vendor(tmp_path, installed=True)),
        lambda pb: stream_status(registry, viewers.get, pb),
    )
    try:
        response = await client.get(f"/play/{PB}/status")
        assert response.headers["Cache-Control"] == "no-store"
        assert (await response.json())["live"] is False
    finally:
        await client.close()
