"""Routes under /v1/assets: the asset library of API.md (create, list, read, delete).

Deleting needs the files too, which only the running server's recording service
can reach: it is handed in under `ASSET_FILES` (see live/app.py). Without one (the
API alone, in tests) only the record is deleted.

Creating an upload or import asset hands it to `ASSET_INTAKE` (the uploads room:
it keeps the poster, starts an import's fetch, presigns S3 upload URLs) and
announces `asset.created` through `ASSET_EVENTS`. Without them (the API alone) the
record is all there is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from live.api.asset_requests import Poster, asset_request
from live.api.body import json_body
from live.api.errors import ApiError, invalid
from live.api.pagination import page_answer, pagination
from live.api.state import STORE, URLS
from live.store.models import Asset
from live.store.times import to_rfc3339, utcnow
from live.urls import PublicUrls


class AssetFiles(Protocol):
    async def delete(self, asset: Asset) -> None:
        """Remove the asset's files (stopping its recording) and its record."""


class AssetIntake(Protocol):
    async def accept(self, asset: Asset, poster: Poster | None) -> None:
        """A new upload or import asset is stored: keep its poster; an import
        starts fetching."""

    async def put_url(self, asset: Asset) -> str | None:
        """A URL the file can be PUT to directly (a presigned S3 URL), or None
        for the node's own `PUT /v1/assets/{id}/file`."""

    async def arrived(self, asset: Asset) -> Asset:
        """An `empty` asset as it now stands: a file PUT to a presigned URL tells
        the server nothing, so the intake looks for it when the asset is read."""


class AssetEvents(Protocol):
    async def __call__(self, event: str, asset: Asset) -> None:
        """Announce an asset event (`asset.created`, ...) to webhooks."""


@dataclass(frozen=True, slots=True)
class UploadSettings:
    max_upload_bytes: int = 20 * 1000**3
    upload_expiry_s: float = 24 * 3600.0  # an unfinished upload's bytes go after this


ASSET_FILES = web.AppKey("asset_files", AssetFiles)
ASSET_INTAKE = web.AppKey("asset_intake", AssetIntake)
ASSET_EVENTS = web.AppKey("asset_events", AssetEvents)
UPLOAD_SETTINGS = web.AppKey("upload_settings", UploadSettings)
_MAX_ID = 64


def _time(value: datetime | None) -> str | None:
    return to_rfc3339(value) if value else None


def asset_json(asset: Asset, urls: PublicUrls, *, put_url: str | None = None) -> dict[str, Any]:
    base = f"{urls.http_base}/vod/{asset.id}"
    # An audio-only asset has no picture to show; none exists before it is ready.
    poster = f"{base}/poster.jpg" if asset.has_poster or asset.status != "ready" else None
    answer = {
        "id": asset.id,
        "name": asset.name,
        "source": asset.source,
        "livestream_id": asset.livestream_id,
        "session_id": asset.session_id,
        "status": asset.status,
        "error": asset.error,
        "progress": asset.progress,
        "duration_s": round(asset.duration_s, 3),
        "size_bytes": asset.size_bytes,
        "hls_url": f"{base}/index.m3u8",
        "mp4_url": f"{base}/download.mp4",
        "poster_url": poster,
        # A sprite sheet and the WebVTT thumbnail track pointing into it, for seek
        # previews; made with the poster, so present exactly when it is.
        "sprite_url": f"{base}/sprite.jpg" if poster else None,
        "thumbnails_vtt_url": f"{base}/sprite.vtt" if poster else None,
        "origin_url": asset.origin_url,
        "clip_start_s": asset.clip_start_s,
        "clip_duration_s": asset.clip_duration_s,
        "transcode": asset.transcode,
        "renditions": asset.renditions,
        "original": asset.original,
        "created_at": _time(asset.created_at),
        "ready_at": _time(asset.ready_at),
    }
    if asset.status == "empty":
        answer["upload"] = {
            "tus_url": f"{urls.http_base}/v1/uploads",
            "put_url": put_url or f"{urls.http_base}/v1/assets/{asset.id}/file",
            "expires_at": _time(asset.upload_expires_at),
        }
    return answer


async def _answer(request: web.Request, asset: Asset, status: int = 200) -> web.Response:
    intake = request.app.get(ASSET_INTAKE)
    put_url = await intake.put_url(asset) if intake and asset.status == "empty" else None
    return web.json_response(asset_json(asset, request.app[URLS], put_url=put_url), status=status)


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
    asset = await _load(request)
    intake = request.app.get(ASSET_INTAKE)
    if intake is not None and asset.status == "empty":
        asset = await intake.arrived(asset)
    return await _answer(request, asset)


async def create_asset(request: web.Request) -> web.Response:
    """An upload (`empty`, waiting for its file) or an import (`pending`: the
    server fetches `origin_url`)."""
    settings = request.app.get(UPLOAD_SETTINGS) or UploadSettings()
    wanted = asset_request(json_body(request), max_upload_bytes=settings.max_upload_bytes)
    importing = wanted.origin_url is not None
    asset = Asset(
        source="url" if importing else "upload",
        name=wanted.name,
        status="pending" if importing else "empty",
        origin_url=wanted.origin_url,
        origin_http_headers=wanted.origin_http_headers,
        clip_start_s=wanted.clip_start_s,
        clip_duration_s=wanted.clip_duration_s,
        transcode=wanted.transcode,  # type: ignore[arg-type]
        declared_size_bytes=wanted.size_bytes,
        upload_expires_at=(
            None if importing else utcnow() + timedelta(seconds=settings.upload_expiry_s)
        ),
    )
    asset = await request.app[STORE].create_asset(asset)
    intake = request.app.get(ASSET_INTAKE)
    if intake is not None:
        await intake.accept(asset, wanted.poster)
    announce = request.app.get(ASSET_EVENTS)
    if announce is not None:
        await announce("asset.created", asset)
    return await _answer(request, asset, status=201)


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
    router.add_post("/assets", create_asset)
    router.add_get("/assets/{id}", get_asset)
    router.add_delete("/assets/{id}", delete_asset)
