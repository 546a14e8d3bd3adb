"""Routes under /v1/livestreams: CRUD and moderation (ban, disconnect, key reset).

Actions that must reach a publisher go through `LiveControl` after the store has
changed, so a publisher that reconnects at once already meets the new state (banned,
new key) and is refused.
"""

from __future__ import annotations

from aiohttp import web

from live.api.auth import can_see_secrets
from live.api.body import json_body
from live.api.errors import ApiError, invalid
from live.api.pagination import page_answer, pagination
from live.api.serialize import livestream_json, session_json
from live.api.state import CONTROL, STORE, URLS
from live.api.validation import ban_request, livestream_settings
from live.api.webhooks import announce
from live.store.models import STATUSES, Livestream
from live.store.times import utcnow


def _not_found(livestream_id: str) -> ApiError:
    return ApiError(404, "livestream_not_found", f"No livestream with id {livestream_id}", "id")


async def _load(request: web.Request) -> Livestream:
    livestream_id = request.match_info["id"]
    ls = await request.app[STORE].get_livestream(livestream_id)
    if ls is None:
        raise _not_found(livestream_id)
    return ls


def _answer(request: web.Request, ls: Livestream | None, status: int = 200) -> web.Response:
    if ls is None:  # deleted between our write and the re-read
        raise _not_found(request.match_info["id"])
    body = livestream_json(
        ls,
        urls=request.app[URLS],
        control=request.app[CONTROL],
        secrets=can_see_secrets(request),
    )
    return web.json_response(body, status=status)


async def create_livestream(request: web.Request) -> web.Response:
    settings = livestream_settings(json_body(request), creating=True)
    ls = await request.app[STORE].create_livestream(**settings)
    return _answer(request, ls, status=201)


async def list_livestreams(request: web.Request) -> web.Response:
    page, page_size = pagination(request)
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of: {', '.join(STATUSES)}")
    now = utcnow()
    items, total = await request.app[STORE].list_livestreams(
        page,
        page_size,
        status,  # type: ignore[arg-type]
        now=now,
    )
    secrets = can_see_secrets(request)
    data = [
        livestream_json(
            ls, urls=request.app[URLS], control=request.app[CONTROL], secrets=secrets, now=now
        )
        for ls in items
    ]
    return web.json_response(page_answer(data, page, page_size, total))


async def get_livestream(request: web.Request) -> web.Response:
    return _answer(request, await _load(request))


async def update_livestream(request: web.Request) -> web.Response:
    ls = await _load(request)
    settings = livestream_settings(json_body(request), creating=False)
    return _answer(request, await request.app[STORE].update_livestream(ls.id, **settings))


async def delete_livestream(request: web.Request) -> web.Response:
    ls = await _load(request)
    await request.app[CONTROL].disconnect(ls.id, "deleted")
    await request.app[STORE].delete_livestream(ls.id)
    return web.Response(status=204, content_type="application/json")


async def ban_livestream(request: web.Request) -> web.Response:
    ls = await _load(request)
    reason, until = ban_request(json_body(request))
    store = request.app[STORE]
    banned = await store.ban(ls.id, reason, until)
    await announce(request, "livestream.banned", banned)
    await request.app[CONTROL].disconnect(ls.id, "banned")
    return _answer(request, await store.get_livestream(ls.id))


async def unban_livestream(request: web.Request) -> web.Response:
    ls = await _load(request)
    unbanned = await request.app[STORE].unban(ls.id)
    await announce(request, "livestream.unbanned", unbanned)
    return _answer(request, unbanned)


async def disconnect_livestream(request: web.Request) -> web.Response:
    """Kick the publisher (it may come back); 200 whether or not one was on."""
    ls = await _load(request)
    await request.app[CONTROL].disconnect(ls.id, "kicked")
    return _answer(request, await request.app[STORE].get_livestream(ls.id))


async def reset_stream_key(request: web.Request) -> web.Response:
    ls = await _load(request)
    store = request.app[STORE]
    await store.reset_stream_key(ls.id)
    await request.app[CONTROL].disconnect(ls.id, "key_reset")
    return _answer(request, await store.get_livestream(ls.id))


async def livestream_history(request: web.Request) -> web.Response:
    page, page_size = pagination(request)
    ls = await _load(request)
    sessions, total = await request.app[STORE].list_sessions(ls.id, page, page_size)
    now = utcnow()
    data = [session_json(s, now=now) for s in sessions]
    return web.json_response(page_answer(data, page, page_size, total))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/livestreams", create_livestream)
    router.add_get("/livestreams", list_livestreams)
    router.add_get("/livestreams/{id}", get_livestream)
    router.add_patch("/livestreams/{id}", update_livestream)
    router.add_delete("/livestreams/{id}", delete_livestream)
    router.add_patch("/livestreams/{id}/ban", ban_livestream)
    router.add_patch("/livestreams/{id}/unban", unban_livestream)
    router.add_post("/livestreams/{id}/disconnect", disconnect_livestream)
    router.add_post("/livestreams/{id}/reset-stream-key", reset_stream_key)
    router.add_get("/livestreams/{id}/history", livestream_history)
