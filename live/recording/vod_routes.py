"""`/vod/{asset_id}/...`: a ready asset's playlist, segments, MP4, poster and sprite.

Two ways to deliver (setting `vod_delivery`):
- "proxy": the node serves every byte. Files on local storage go out with
  aiohttp's FileResponse (sendfile, HTTP Range, conditional requests); other
  storage is streamed by range (206 with Content-Range, 416 past the end).
- "redirect": media objects are answered with a 302 to a presigned URL of the
  bucket, so their bytes never pass through the node; the playlist is still
  served by the node, with absolute presigned URIs inside. Storage that cannot
  presign (local files) is proxied.
Playlists and the sprite's WebVTT (which names the sprite relatively) are always
served by the node. Playback is public: every answer carries
`Access-Control-Allow-Origin: *` (API.md), errors too. Nothing is served before the
asset is `ready`, or `viewable` (an upload whose first renditions are stored while
the others are made; its `index.m3u8` changes when it is ready, so it is not cached).
An upload's playlists are a multivariant `index.m3u8` over rendition playlists
(`720p.m3u8`...); in "redirect" delivery every playlist is served by the node, and
only the media URIs inside are presigned.
"""

from __future__ import annotations

import contextlib
import re
from typing import Literal

from aiohttp import web

from live.api.errors import error_response
from live.recording import layout
from live.storage.base import Storage
from live.store.base import Store

VodDelivery = Literal["proxy", "redirect"]

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
}
_ASSET_ID = re.compile(r"ast_[A-Za-z0-9_\-]{1,40}")
# Ready assets never change; a deleted one should vanish from caches soon.
_CACHE = "public, max-age=3600"
# What carries presigned URLs expires: caches keep it far less long than the URLs last.
_SIGNED_CACHE = "private, max-age=60"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_MAP_URI = re.compile(r'URI="([^"]+)"')
_SERVED_BY_NODE = (layout.PLAYLIST, layout.SPRITE_VTT)
_PLAYABLE = ("ready", "viewable")


def setup_vod_routes(
    app: web.Application,
    store: Store,
    storage: Storage,
    *,
    delivery: VodDelivery = "proxy",
    url_expiry_s: int = 3600,
) -> None:
    handlers = _VodHandlers(store, storage, delivery, url_expiry_s)
    app.router.add_get("/vod/{asset_id}/{name}", handlers.serve)
    app.router.add_route("OPTIONS", "/vod/{asset_id}/{name}", handlers.preflight)


class _VodHandlers:
    def __init__(
        self, store: Store, storage: Storage, delivery: VodDelivery, url_expiry_s: int
    ) -> None:
        self.store = store
        self.storage = storage
        self.redirect = delivery == "redirect"
        self.url_expiry_s = url_expiry_s

    async def preflight(self, request: web.Request) -> web.Response:
        headers = {**_CORS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                   "Access-Control-Allow-Headers": "Range"}  # fmt: skip
        return web.Response(status=204, headers=headers)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        asset_id, name = request.match_info["asset_id"], request.match_info["name"]
        if not _ASSET_ID.fullmatch(asset_id) or not layout.PLAYBACK_NAMES.fullmatch(name):
            return _not_found(f"No VOD file {name} for {asset_id}")
        asset = await self.store.get_asset(asset_id)
        if asset is None:
            return _not_found(f"No asset with id {asset_id}", "asset_not_found")
        if asset.status not in _PLAYABLE:
            return _not_found(f"Asset {asset_id} is {asset.status}, not ready", "asset_not_ready")
        prefix = layout.asset_prefix(asset_id)
        key = prefix + name
        headers = {**_CORS, "Cache-Control": _CACHE, "Content-Type": layout.content_type(name)}
        if asset.status != "ready" and name == layout.PLAYLIST:
            headers["Cache-Control"] = "no-cache"
        download_name = f"{asset_id}.mp4" if name == layout.MP4 else None
        if download_name:
            headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
        if self.redirect:
            if name.endswith(".m3u8"):
                signed = await self._signed_playlist(prefix, key)
                if signed is not None:
                    if headers["Cache-Control"] == _CACHE:
                        headers["Cache-Control"] = _SIGNED_CACHE
                    return web.Response(body=signed, headers=headers)
            elif name not in _SERVED_BY_NODE:
                url = await self._presign(key, download_name)
                if url is not None:
                    location = {**_CORS, "Location": url, "Cache-Control": _SIGNED_CACHE}
                    return web.Response(status=302, headers=location)
        path = self.storage.local_path(key)
        if path is not None:
            if not await self.storage.exists(key):
                return _not_found(f"No VOD file {name} for {asset_id}")
            return web.FileResponse(path, headers=headers)
        return await self._from_storage(request, key, headers)

    async def _presign(self, key: str, download_name: str | None = None) -> str | None:
        name = key.rsplit("/", 1)[-1]
        return await self.storage.presigned_get(
            key,
            self.url_expiry_s,
            content_type=layout.content_type(name),
            download_name=download_name,
        )

    async def _signed_playlist(self, prefix: str, key: str) -> bytes | None:
        """The stored playlist with every URI an absolute presigned URL; None when
        the storage cannot presign (or the playlist is missing: the caller says 404)."""
        try:
            text = (await self.storage.get(key)).decode()
        except KeyError:
            return None
        lines = []
        for line in text.splitlines():
            if line.startswith("#EXT-X-MAP:"):
                uri = _MAP_URI.search(line)
                if uri is not None:
                    url = await self._presign_name(prefix, uri.group(1))
                    if url is None:
                        return None
                    line = f"{line[: uri.start(1)]}{url}{line[uri.end(1) :]}"
            elif line and not line.startswith("#") and not line.endswith(".m3u8"):
                # a multivariant's rendition playlists stay on the node (they are
                # signed when served); media URIs are presigned
                url = await self._presign_name(prefix, line)
                if url is None:
                    return None
                line = url
            lines.append(line)
        return ("\n".join(lines) + "\n").encode()

    async def _presign_name(self, prefix: str, name: str) -> str | None:
        if not layout.PLAYBACK_NAMES.fullmatch(name):
            return None
        return await self._presign(prefix + name)

    async def _from_storage(
        self, request: web.Request, key: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Storage without local files: the object (or one byte range of it)
        streamed through, never held whole in memory."""
        size = await self.storage.size(key)
        if size is None:
            return _not_found(f"No VOD file {key.rsplit('/', 1)[-1]}")
        headers["Accept-Ranges"] = "bytes"
        start, end, status = 0, size, 200
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
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            status = 206
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = end - start
        await response.prepare(request)
        if request.method != "HEAD":
            # closed at once when the client goes away, releasing the connection
            async with contextlib.aclosing(self.storage.stream(key, start, end)) as chunks:
                async for chunk in chunks:
                    await response.write(chunk)
        await response.write_eof()
        return response


def _not_found(message: str, code: str = "not_found") -> web.Response:
    response = error_response(404, code, message)
    response.headers.update(_CORS)
    return response
