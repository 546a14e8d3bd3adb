"""Routes under /v1/assets: the recordings of API.md (list, read, delete).

Deleting needs the files too, which only the running server's recording service
can reach: it is handed in under `ASSET_FILES` (see live/app.py). Without one (the
API alone, in tests) only the record is deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from live.api.errors import ApiError, invalid
from live.api.pagination import page_answer, pagination
from live.api.state import STORE, URLS
from live.store.models import Asset
from live.store.times import to_rfc3339
from live.urls import PublicUrls


class AssetFiles(Protocol):
    async def delete(self, asset: Asset) -> None:
        """Remove the asset's files (stopping its recording) and its record."""


ASSET_FILES = web.AppKey("asset_files", AssetFiles)
_MAX_ID = 64


def _time(value: datetime | None) -> str | None:
    return to_rfc3339(value) if value else None


def asset_json(asset: Asset, urls: PublicUrls) -> dict[str, Any]:
    base = f"{urls.http_base}/vod/{asset.id}"
    # An audio-only recording has no picture to show.
    poster = f"{base}/poster.jpg" if asset.has_poster or asset.status != "ready" else None
    return {
        "id": asset.id,
        "livestream_id": asset.livestream_id,
        "session_id": asset.session_id,
        "status": asset.status,
        "error": asset.error,
        "duration_s": round(asset.duration_s, 3),
        "size_bytes": asset.size_bytes,
        "hls_url": f"{base}/index.m3u8",
        "mp4_url": f"{base}/download.mp4",
        "poster_url": poster,
        # A sprite sheet and the WebVTT thumbnail track pointing into it, for seek
        # previews; made with the poster, so present exactly when it is.
        "sprite_url": f"{base}/sprite.jpg" if poster else None,
        "thumbnails_vtt_url": f"{base}/sprite.vtt" if poster else None,
        "created_at": _time(asset.created_at),
        "ready_at": _time(asset.ready_at),
    }


async def _load(request: web.Request) -> Asset:
    asset_id = request.match_info["id"]
    asset = await request.app[STORE].get_asset(asset_id)
    if asset is None:
        raise ApiError(404, "asset_not_found", f"No asset with id {asset_id}", "id")
    return asset


async def list_assets(request: web.Request) -> web.Response:
    page, page_size = pagination(request)
    livestream_id = request.query.get("livestream_id")
    if livestream_id is not None and not 0 < len(livestream_id) <= _MAX_ID:
        raise invalid("livestream_id", "livestream_id must be a livestream id")
    items, total = await request.app[STORE].list_assets(
        page, page_size, livestream_id=livestream_id
    )
    data = [asset_json(asset, request.app[URLS]) for asset in items]
    return web.json_response(page_answer(data, page, page_size, total))


async def get_asset(request: web.Request) -> web.Response:
    return web.json_response(asset_json(await _load(request), request.app[URLS]))


async def delete_asset(request: web.Request) -> web.Response:
    asset = await _load(request)
    files = request.app.get(ASSET_FILES)
    if files is not None:
        await files.delete(asset)
    else:
        await request.app[STORE].delete_asset(asset.id)
    return web.Response(status=204, content_type="application/json")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/assets", list_assets)
    router.add_get("/assets/{id}", get_asset)
    router.add_delete("/assets/{id}", delete_asset)
