"""The upload routes of /v1: tus at `/v1/uploads` and the single `PUT
/v1/assets/{id}/file`. Not JSON routes: they stream their bodies into storage
(`streams_body`), and a tus PATCH chunk spends no rate-limit token (`unmetered`).

tus answers carry `Tus-Resumable` and the protocol's statuses (tus.py); errors are
the API's JSON error objects all the same, so every client reads them one way.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiohttp import web

from live.api.assets import asset_json
from live.api.errors import ApiError
from live.api.route_marks import streams_body, unmetered
from live.api.state import STORE, URLS
from live.uploads import tus
from live.uploads.receiver import UploadReceiver
from live.uploads.refusal import UploadRefused

UPLOADS = web.AppKey("uploads", UploadReceiver)

READ_CHUNK = 1024 * 1024
_UPLOAD_ID = re.compile(r"upl_[A-Za-z0-9_-]{1,64}")
_ASSET_ID = re.compile(r"ast_[A-Za-z0-9_-]{1,64}")


def _refusal(error: UploadRefused, *, speaks_tus: bool = True) -> ApiError:
    headers = dict(error.headers)
    if speaks_tus:
        headers.setdefault("Tus-Resumable", tus.VERSION)
    return ApiError(error.status, error.code, error.message, headers=headers)


def _refused_mid_body(request: web.Request, error: ApiError) -> web.Response:
    """The error answer to a request whose body may still be coming: the connection
    closes after it, since the rest of the body cannot be read as a next request."""
    response = error.response()
    if not request.content.at_eof():
        response.force_close()
    return response


def _receiver(request: web.Request) -> UploadReceiver:
    receiver = request.app.get(UPLOADS)
    if receiver is None:
        raise ApiError(503, "uploads_unavailable", "This server takes no uploads")
    return receiver


def _upload_id(request: web.Request) -> str:
    """Ids are ours: anything else (dots, slashes, odd Unicode) is simply unknown."""
    upload_id = request.match_info["id"]
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise tus.TusError(404, "upload_not_found", "No such upload")
    return upload_id


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


@streams_body
async def create_upload(request: web.Request) -> web.Response:
    """tus creation: `Upload-Length` and `Upload-Metadata` naming the `asset_id`."""
    receiver = _receiver(request)
    try:
        tus.check_version(request.headers)
        creation = tus.read_creation(request.headers, receiver.max_upload_bytes)
        asset_id = creation.metadata.get("asset_id", "")
        if not _ASSET_ID.fullmatch(asset_id):
            raise tus.TusError(
                400, "invalid_metadata", "Upload-Metadata must name the asset: asset_id ast_..."
            )
        upload = await receiver.create(asset_id, creation.length, creation.metadata)
        if creation.length == 0:  # nothing to wait for
            upload = await receiver.receive(upload.id, 0, _nothing())
    except UploadRefused as error:
        raise _refusal(error) from None
    location = f"{request.app[URLS].http_base}/v1/uploads/{upload.id}"
    return web.Response(status=201, headers=tus.created_headers(location, upload.expires_at))


async def upload_status(request: web.Request) -> web.Response:
    """tus HEAD: where the upload stands, for a client resuming."""
    try:
        tus.check_version(request.headers)
        upload = await _receiver(request).get(_upload_id(request))
    except UploadRefused as error:
        raise _refusal(error) from None
    length = upload.length if upload.length is not None else upload.offset
    return web.Response(
        status=200,
        headers=tus.head_headers(upload.offset, length, upload.metadata, upload.expires_at),
    )


@streams_body
@unmetered
async def upload_chunk(request: web.Request) -> web.Response:
    """tus PATCH: bytes at the upload's offset; what arrives is kept even when the
    connection drops."""
    receiver = _receiver(request)
    try:
        tus.check_version(request.headers)
        upload_id = _upload_id(request)
        upload = await receiver.get(upload_id)
        length = upload.length if upload.length is not None else receiver.max_upload_bytes
        chunk = tus.read_chunk(request.headers, upload.offset, length)
        upload = await receiver.receive(
            upload_id, chunk.offset, _body(request), checksum=chunk.checksum
        )
    except UploadRefused as error:
        return _refused_mid_body(request, _refusal(error))
    return web.Response(status=204, headers=tus.patch_headers(upload.offset, upload.expires_at))


async def terminate_upload(request: web.Request) -> web.Response:
    """tus termination: the upload and its bytes go."""
    try:
        tus.check_version(request.headers)
        await _receiver(request).terminate(_upload_id(request))
    except UploadRefused as error:
        raise _refusal(error) from None
    return web.Response(status=204, headers=tus.terminated_headers())


async def tus_options(request: web.Request) -> web.Response:
    """What this server speaks (tus discovery)."""
    return web.Response(
        status=204, headers=tus.options_headers(_receiver(request).max_upload_bytes)
    )


@streams_body
async def put_file(request: web.Request) -> web.Response:
    """The whole file as the body, for clients without tus. Not resumable: a body
    cut short leaves nothing behind."""
    receiver = _receiver(request)
    asset_id = request.match_info["id"]
    length = request.content_length
    try:
        if length is not None and length > receiver.max_upload_bytes:
            raise UploadRefused(
                413,
                "payload_too_large",
                f"Content-Length {length} is over the limit of {receiver.max_upload_bytes} bytes",
            )
        if not _ASSET_ID.fullmatch(asset_id):
            raise UploadRefused(404, "asset_not_found", f"No asset with id {asset_id}")
        upload = await receiver.create(asset_id, length, {}, kind="put")
        try:
            await receiver.receive(upload.id, 0, _body(request), complete_at_end=True)
        except BaseException:
            await receiver.drop(upload)
            raise
    except UploadRefused as error:
        return _refused_mid_body(request, _refusal(error, speaks_tus=False))
    asset = await request.app[STORE].get_asset(asset_id)
    if asset is None:
        raise ApiError(404, "asset_not_found", f"No asset with id {asset_id}", "id")
    return web.json_response(asset_json(asset, request.app[URLS]))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/uploads", create_upload)
    router.add_route("OPTIONS", "/uploads", tus_options)
    router.add_route("HEAD", "/uploads/{id}", upload_status)
    router.add_patch("/uploads/{id}", upload_chunk)
    router.add_delete("/uploads/{id}", terminate_upload)
    router.add_route("OPTIONS", "/uploads/{id}", tus_options)
    router.add_put("/assets/{id}/file", put_file)
