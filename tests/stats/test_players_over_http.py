"""Two players over real HTTP, through the `/live` handlers and the viewer tracker as
`live serve` wires them: each gets its own id in its path, and the players route's
figures follow what each fetched."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.hls import HlsRegistry, HlsStream, HlsWindow, Rendition, setup_hls_routes
from live.hls.front import FrontRunner
from live.stats.viewers import ViewerTracker

PB = "pb_http"


def _window(part_size: int) -> HlsWindow:
    window = HlsWindow(target_duration=1)
    window.set_init(b"init")
    for _ in range(2):
        window.start_segment()
        for n in range(5):
            window.add_part(bytes(part_size), 0.2, n == 0)
    return window


class _Server(TestServer):
    def __init__(self, app: web.Application, front) -> None:
        super().__init__(app)
        self._front = front

    async def _make_runner(self, **kwargs) -> FrontRunner:
        return FrontRunner(self.app, service=self._front, **kwargs)


async def test_two_players_are_counted_with_their_renditions_and_bytes() -> None:
    registry = HlsRegistry()
    registry.register(
        HlsStream(PB, [Rendition("source", _window(1000), 3_000_000),
                       Rendition("480p", _window(300), 900_000)])
    )  # fmt: skip
    tracker = ViewerTracker(registry)
    app = web.Application()
    handlers = setup_hls_routes(
        app, registry, on_request=tracker.on_request, start_player=tracker.start_player
    )
    async with TestClient(_Server(app, handlers)) as client:
        players = {}
        for choice in ("source", "480p"):
            multivariant = await (await client.get(f"/live/{PB}/index.m3u8")).text()
            uri = next(u for u in multivariant.splitlines() if u.endswith(f"/{choice}/index.m3u8"))
            player_id = uri.split("/")[0]
            base = f"/live/{PB}/{player_id}/{choice}"
            playlist = await client.get(
                f"{base}/index.m3u8", headers={"Accept-Encoding": "identity"}
            )
            body = await playlist.text()
            newest = re.findall(r'#EXT-X-PART:.*URI="(part-\d+\.m4s)"', body)[-1]
            part = await (await client.get(f"{base}/{newest}")).read()
            assert len(part) == (1000 if choice == "source" else 300)
            players[player_id] = (choice, len(body) + len(part))
        assert len(players) == 2

    report = tracker.report(PB, live=True)
    assert report is not None
    assert report["current_viewers"] == 2 and report["total_views"] == 2
    got = {p["id"]: (p["rendition"], p["bytes_out"]) for p in report["players"]}
    assert got == players
    assert {name: entry["current_viewers"] for name, entry in report["renditions"].items()} == {
        "source": 1,
        "480p": 1,
    }
