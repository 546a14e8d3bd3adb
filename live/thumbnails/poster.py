"""`/live/{playback_id}/poster.jpg`: the latest keyframe of a live stream.

A poster is decoded only when someone asks and the cached one is older than
`refresh_s` (and a newer keyframe exists), and one decode serves every request
that arrives meanwhile: a thousand viewers loading a page cost one decode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from live.media.packet import MediaPacket, TrackInfo
from live.thumbnails.jpeg import ThumbnailError, keyframe_to_jpeg

log = logging.getLogger(__name__)

# What a poster is made from: the video track and its latest keyframe, or None.
KeyframeSource = Callable[[str], tuple[TrackInfo, MediaPacket] | None]


@dataclass
class _Poster:
    keyframe: MediaPacket
    jpeg: bytes
    made_at: float


class PosterService:
    def __init__(self, source: KeyframeSource, refresh_s: float = 5.0) -> None:
        self._source = source
        self.refresh_s = refresh_s
        self._cache: dict[str, _Poster] = {}
        self._pending: dict[str, asyncio.Task[_Poster]] = {}
        self.decodes = 0

    async def poster(self, playback_id: str) -> bytes | None:
        found = self._source(playback_id)
        if found is None:
            self._cache.pop(playback_id, None)
            return None
        track, keyframe = found
        cached = self._cache.get(playback_id)
        if cached is not None and (
            cached.keyframe is keyframe or time.monotonic() - cached.made_at < self.refresh_s
        ):
            return cached.jpeg
        task = self._pending.get(playback_id)
        if task is None:
            task = asyncio.create_task(self._make(track, keyframe))
            self._pending[playback_id] = task
            task.add_done_callback(lambda _: self._pending.pop(playback_id, None))
        try:
            poster = await asyncio.shield(task)
        except ThumbnailError as error:
            log.warning("poster for %s: %s", playback_id, error)
            return cached.jpeg if cached else None
        self._cache[playback_id] = poster
        return poster.jpeg

    async def _make(self, track: TrackInfo, keyframe: MediaPacket) -> _Poster:
        self.decodes += 1
        jpeg = await asyncio.to_thread(keyframe_to_jpeg, track, keyframe)
        return _Poster(keyframe, jpeg, time.monotonic())

    def setup_route(self, app: web.Application) -> None:
        """Register before the HLS routes, whose `/live/...` fallback catches all."""
        app.router.add_get("/live/{playback_id}/poster.jpg", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        headers = {"Access-Control-Allow-Origin": "*"}
        jpeg = await self.poster(request.match_info["playback_id"])
        if jpeg is None:
            return web.json_response(
                {
                    "error": {
                        "code": "not_found",
                        "message": "No live picture for this stream",
                        "param": "playback_id",
                    }
                },
                status=404,
                headers={**headers, "Cache-Control": "no-cache"},
            )
        headers["Cache-Control"] = f"max-age={max(1, int(self.refresh_s))}"
        return web.Response(body=jpeg, content_type="image/jpeg", headers=headers)
