"""Routes under /v1/api-keys: admin keys manage keys; the secret is shown once."""

from __future__ import annotations

from aiohttp import web

from live.api.auth import require_admin
from live.api.body import json_body
from live.api.errors import ApiError
from live.api.pagination import page_answer, pagination
from live.api.serialize import api_key_json
from live.api.state import STORE
from live.api.validation import api_key_request


async def create_api_key(request: web.Request) -> web.Response:
    require_admin(request)
    name, scope = api_key_request(json_body(request))
    key, plaintext = await request.app[STORE].create_api_key(name, scope)  # type: ignore[arg-type]
    return web.json_response(api_key_json(key, plaintext), status=201)


async def list_api_keys(request: web.Request) -> web.Response:
    require_admin(request)
    page, page_size = pagination(request)
    keys, total = await request.app[STORE].list_api_keys(page, page_size)
    return web.json_response(page_answer([api_key_json(k) for k in keys], page, page_size, total))


async def delete_api_key(request: web.Request) -> web.Response:
    require_admin(request)
    key_id = request.match_info["id"]
    if not await request.app[STORE].delete_api_key(key_id):
        raise ApiError(404, "api_key_not_found", f"No API key with id {key_id}", "id")
    return web.Response(status=204, content_type="application/json")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api-keys", create_api_key)
    router.add_get("/api-keys", list_api_keys)
    router.add_delete("/api-keys/{id}", delete_api_key)
