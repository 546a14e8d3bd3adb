"""aiohttp routes of the pages, their static files and the headers that fit each page.

The player may be framed by any site (that is what embedding is); the dashboard and
the publishing page may not (clickjacking a ban button or a camera prompt). Every page
gets a Content-Security-Policy that allows scripts from this server only (plus the CDN
named by `web_js_url`), so a stream name that slipped into the DOM as HTML still could
not run.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from live.api.errors import error_response

WEB_DIR = Path(__file__).resolve().parent
VENDOR_DIR = WEB_DIR / "vendor"
HLS_FILE = "hls.js/dist/hls.min.js"  # the UMD build: one file, its worker inlined
TUS_FILE = "tus-js-client/dist/tus.min.js"  # the browser bundle: defines window.tus
_PLAYBACK_ID = re.compile(r"pb_[A-Za-z0-9_\-]{1,40}")
_ASSET_ID = re.compile(r"ast_[A-Za-z0-9_\-]{1,40}")
# Relative paths of plain names: no "..", no hidden files, no backslashes.
_STATIC_PATH = re.compile(r"(?:[A-Za-z0-9_\-][A-Za-z0-9_.\-]*/)*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}
MISSING_JS_NOTICE = (
    "The video library this page needs (hls.js) is not installed on this server. "
    "Run scripts/setup.sh on the server (it installs hls.js with npm into live/web/vendor), "
    "or set web_js_url to an npm CDN such as https://cdn.jsdelivr.net/npm."
)

# playback_id -> what the player page polls (see status.py).
StatusSource = Callable[[str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WebSettings:
    # Base URL of an npm CDN (`{js_url}/hls.js@VERSION/dist/hls.min.js`); empty: the
    # copy `scripts/setup.sh` installed under vendor_dir.
    js_url: str = ""
    vendor_dir: Path = field(default=VENDOR_DIR)

    def hls_src(self) -> str:
        """Where the pages load hls.js from, or "" when there is no copy to load."""
        return self.vendored_src(HLS_FILE)

    def tus_src(self) -> str:
        """Where the dashboard loads tus-js-client from, or "" when there is no copy."""
        return self.vendored_src(TUS_FILE)

    def vendored_src(self, file: str) -> str:
        """`file` ("package/path") from the CDN at the version package.json pins, or
        from the copy `scripts/setup.sh` installed; "" when neither."""
        package, path = file.split("/", 1)
        if self.js_url:
            return f"{self.js_url.rstrip('/')}/{package}@{self.version_of(package)}/{path}"
        if (self.vendor_dir / "node_modules" / file).is_file():
            return f"/web/vendor/{file}"
        return ""

    def version_of(self, package: str) -> str:
        """The version range vendor/package.json asks npm for: the CDN serves the same."""
        manifest = json.loads((self.vendor_dir / "package.json").read_text())
        return manifest["dependencies"][package].lstrip("~^=")

    def script_origins(self) -> str:
        if not self.js_url:
            return "'self'"
        parts = urlsplit(self.js_url)
        return f"'self' {parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class _Page:
    template: str
    frameable: bool
    uses_camera: bool = False


_PAGES = {
    "play": _Page("play.html", frameable=True),
    "admin": _Page("admin.html", frameable=False),
    "publish": _Page("publish.html", frameable=False, uses_camera=True),
}


def page_headers(page: _Page, settings: WebSettings) -> dict[str, str]:
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {settings.script_origins()}",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "worker-src 'self' blob:",  # hls.js runs its transmuxer in a blob worker
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors *" if page.frameable else "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
        "Permissions-Policy": (
            "camera=(self), microphone=(self)" if page.uses_camera else "camera=(), microphone=()"
        ),
    }
    if not page.frameable:
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return headers


class _WebHandlers:
    def __init__(self, settings: WebSettings, status: StatusSource) -> None:
        self.settings = settings
        self.status_of = status
        self.static_dir = (WEB_DIR / "static").resolve()
        self.vendor_dir = (settings.vendor_dir / "node_modules").resolve()

    def render(self, name: str) -> web.Response:
        page = _PAGES[name]
        hls_src = self.settings.hls_src()
        notice = "" if hls_src else MISSING_JS_NOTICE
        text = (WEB_DIR / "pages" / page.template).read_text()
        text = text.replace("{{hls_src}}", html.escape(hls_src, quote=True))
        text = text.replace("{{tus_src}}", html.escape(self.settings.tus_src(), quote=True))
        text = text.replace("{{js_notice}}", html.escape(notice))
        text = text.replace("{{js_notice_hidden}}", "" if notice else "hidden")
        return web.Response(
            text=text, content_type="text/html", headers=page_headers(page, self.settings)
        )

    async def play(self, request: web.Request) -> web.Response:
        if not _PLAYBACK_ID.fullmatch(request.match_info["playback_id"]):
            return error_response(404, "not_found", "No such playback id")
        return self.render("play")

    async def vod(self, request: web.Request) -> web.Response:
        if not _ASSET_ID.fullmatch(request.match_info["asset_id"]):
            return error_response(404, "asset_not_found", "No such asset id")
        return self.render("play")

    async def admin(self, request: web.Request) -> web.Response:
        return self.render("admin")

    async def publish(self, request: web.Request) -> web.Response:
        return self.render("publish")

    async def status(self, request: web.Request) -> web.Response:
        playback_id = request.match_info["playback_id"]
        if not _PLAYBACK_ID.fullmatch(playback_id):
            return error_response(404, "not_found", "No such playback id")
        return web.json_response(
            self.status_of(playback_id),
            headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
        )

    async def static(self, request: web.Request) -> web.StreamResponse:
        """Our files and the vendored ones; nothing outside their folders."""
        path = request.match_info["path"]
        root = self.static_dir
        if path.startswith("vendor/"):
            root, path = self.vendor_dir, path.removeprefix("vendor/")
        if not _STATIC_PATH.fullmatch(path):  # first: a NUL would make resolve() raise
            return error_response(404, "not_found", "No such file")
        file = (root / path).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return error_response(404, "not_found", "No such file")
        response = web.FileResponse(
            file,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",  # revalidated (ETag): an upgrade shows at once
                "Content-Type": _TYPES.get(file.suffix, "application/octet-stream"),
            },
        )
        return response


def setup_web_routes(app: web.Application, settings: WebSettings, status: StatusSource) -> None:
    """`/play/{playback_id}` (+ `/status`), `/vod/{asset_id}`, `/admin`, `/publish` and
    their files under `/web/`. `status(playback_id)` says whether a stream is on air."""
    handlers = _WebHandlers(settings, status)
    router = app.router
    router.add_get("/play/{playback_id}", handlers.play)
    router.add_get("/play/{playback_id}/status", handlers.status)
    router.add_get("/vod/{asset_id}", handlers.vod)
    router.add_get("/admin", handlers.admin)
    router.add_get("/publish", handlers.publish)
    router.add_get("/web/{path:.+}", handlers.static)
