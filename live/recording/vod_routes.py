"""`/vod/{asset_id}/...`: a ready asset's playlist, segments, MP4 and poster.

Files on local storage go out with aiohttp's FileResponse (sendfile, HTTP Range,
conditional requests); other storage is read by range in a thread. Playback is
public: every answer carries `Access-Control-Allow-Origin: *` (API.md), errors too.
Nothing is served before the asset is `ready`: until then its files are moving.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from live.api.errors import error_response
from live.recording.finalize import MP4
from live.storage.base import Storage
from live.store.base import Store

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
}
_NAMES = re.compile(
    r"index\.m3u8|download\.mp4|poster\.jpg|sprite\.jpg|sprite\.vtt|init_\d{1,6}\.mp4|seg_\d{5,9}\.m4s"
)
_ASSET_ID = re.compile(r"ast_[A-Za-z0-9_\-]{1,40}")
_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
}
# Ready assets never change; a deleted one should vanish from caches soon.
_CACHE = "public, max-age=3600"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def setup_vod_routes(app: web.Application, store: Store, storage: Storage) -> None:
    handlers = _VodHandlers(store, storage)
    app.router.add_get("/vod/{asset_id}/{name}", handlers.serve)
    app.router.add_route("OPTIONS", "/vod/{asset_id}/{name}", handlers.preflight)


class _VodHandlers:
    def __init__(self, store: Store, storage: Storage) -> None:
        self.store = store
        self.storage = storage

    async def preflight(self, request: web.Request) -> web.Response:
        headers = {**_CORS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                   "Access-Control-Allow-Headers": "Range"}  # fmt: skip
        return web.Response(status=204, headers=headers)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        asset_id, name = request.match_info["asset_id"], request.match_info["name"]
        if not _ASSET_ID.fullmatch(asset_id) or not _NAMES.fullmatch(name):
            return _not_found(f"No VOD file {name} for {asset_id}")
        asset = await self.store.get_asset(asset_id)
        if asset is None:
            return _not_found(f"No asset with id {asset_id}", "asset_not_found")
        if asset.status != "ready":
            return _not_found(f"Asset {asset_id} is {asset.status}, not ready", "asset_not_ready")
        key = f"assets/{asset_id}/{name}"
        content_type = _TYPES[name[name.rindex(".") :]]
        headers = {**_CORS, "Cache-Control": _CACHE, "Content-Type": content_type}
        if name == MP4:
            headers["Content-Disposition"] = f'attachment; filename="{asset_id}.mp4"'
        path = self.storage.local_path(key)
        if path is not None:
            if not await asyncio.to_thread(path.is_file):
                return _not_found(f"No VOD file {name} for {asset_id}")
            return web.FileResponse(path, headers=headers)
        return await self._from_storage(request, key, headers)

    async def _from_storage(
        self, request: web.Request, key: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Remote storage: one byte range (or the whole object) read in a thread."""
        size = await asyncio.to_thread(self.storage.size, key)
        if size is None:
            return _not_found(f"No VOD file {key.rsplit('/', 1)[-1]}")
        headers["Accept-Ranges"] = "bytes"
        match = _RANGE.fullmatch(request.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(size, int(match.group(2)) + 1) if match.group(2) else size
            else:
                start, end = max(0, size - int(match.group(2))), size
            if start >= size or start >= end:
                unsatisfiable = {**_CORS, "Content-Range": f"bytes */{size}"}
                return web.Response(status=416, headers=unsatisfiable)
            body = await asyncio.to_thread(self.storage.get, key, start, end)
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            return web.Response(status=206, body=body, headers=headers)
        body = await asyncio.to_thread(self.storage.get, key)
        return web.Response(body=body, headers=headers)


def _not_found(message: str, code: str = "not_found") -> web.Response:
    response = error_response(404, code, message)
    response.headers.update(_CORS)
    return response
