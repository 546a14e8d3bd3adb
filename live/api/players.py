"""`GET /v1/livestreams/{id}/players`: viewer statistics, now and over the current
(or, when idle, the last) session. The counting itself is in live/stats/viewers.py."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from live.api.errors import ApiError
from live.api.state import CONTROL, STORE


class ViewerStats(Protocol):
    def report(self, playback_id: str, *, live: bool) -> dict[str, Any] | None: ...


VIEWERS = web.AppKey("viewers", ViewerStats)

_EMPTY = {
    "current_viewers": 0,
    "peak_viewers": 0,
    "total_views": 0,
    "unique_viewers": 0,
    "watch_time_s": 0.0,
    "bytes_out": 0,
    "renditions": {},
    "players": [],
}


async def livestream_players(request: web.Request) -> web.Response:
    livestream_id = request.match_info["id"]
    store = request.app[STORE]
    ls = await store.get_livestream(livestream_id)
    if ls is None:
        raise ApiError(404, "livestream_not_found", f"No livestream with id {livestream_id}", "id")
    # The store says whether the stream is live (as for the livestream object): a
    # node's memory of another node's session may outlive it by a moment.
    live = request.app[CONTROL].current_session(ls.id) if ls.live else None
    if live is not None:
        session_id: str | None = live.session.id
        last = None
    else:
        sessions, _ = await store.list_sessions(ls.id, 1, 1)
        last = sessions[0] if sessions else None
        session_id = last.id if last else None
    viewers = request.app.get(VIEWERS)
    report = viewers.report(ls.playback_id, live=live is not None) if viewers else None
    if report is None:  # nothing in memory (another node, or a restart): the history
        report = dict(_EMPTY)
        if last is not None:
            report["peak_viewers"] = last.peak_viewers
            report["total_views"] = last.total_views
    return web.json_response({"livestream_id": ls.id, "session_id": session_id, **report})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/livestreams/{id}/players", livestream_players)
