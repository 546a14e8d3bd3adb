"""max_viewers_per_stream and max_viewers over HTTP: the real /live handlers with the
viewer tracker's hooks. A new player beyond a limit gets 503 in the API's error
shape; players already watching are served as before; room comes back as players
leave."""

from __future__ import annotations

import dataclasses

from hls_testing import PB, add_parts, feed, make_stream, make_window, serve

from live.hls import HlsRegistry
from live.hops import TrustedHops, parse_networks
from live.limits import LimitHits
from live.stats.viewers import ViewerTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry_with(*playback_ids: str) -> HlsRegistry:
    registry = HlsRegistry()
    for playback_id in playback_ids:
        window = make_window(td=1)
        feed(window, 2)
        window.start_segment()
        add_parts(window, 2)
        registry.register(dataclasses.replace(make_stream(window), playback_id=playback_id))
    return registry


def tracked(registry: HlsRegistry, tracker: ViewerTracker):
    return serve(
        registry,
        on_request=tracker.on_request,
        start_player=tracker.start_player,
        admit=tracker.admit,
    )


async def start_player(client, playback_id: str = PB, ua: str = "hls.js"):
    """The multivariant fetch that makes a player; its id, or the refusal."""
    resp = await client.get(f"/live/{playback_id}/index.m3u8", headers={"User-Agent": ua})
    if resp.status != 200:
        return resp
    uri = next(line for line in (await resp.text()).splitlines() if "source/" in line)
    player_id = uri.split("/")[0]  # its id is a path segment of the playlist URI
    assert player_id.startswith("pl_"), uri
    return player_id


async def playlist(client, player: str | None, playback_id: str = PB, ua: str = "hls.js"):
    base = f"/live/{playback_id}/{player}" if player else f"/live/{playback_id}"
    return await client.get(f"{base}/source/index.m3u8", headers={"User-Agent": ua})


async def test_a_player_over_the_stream_limit_gets_503_and_the_others_go_on():
    clock = Clock()
    hits = LimitHits()
    tracker = ViewerTracker(
        clock=clock, default_target_duration=1.0, max_viewers_per_stream=2, limit_hits=hits
    )
    async with tracked(registry_with(PB), tracker) as client:
        first, second = await start_player(client), await start_player(client)
        refused = await start_player(client)
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "10"
        assert refused.headers["Access-Control-Allow-Origin"] == "*"
        assert await refused.json() == {"error": {
            "code": "unavailable",
            "message": "This stream has its maximum of 2 viewers; try again later",
        }}  # fmt: skip
        # a player that skips the multivariant (no id: known by address + agent) too
        assert (await playlist(client, None, ua="VLC")).status == 503
        assert (await client.get(f"/live/{PB}/source/part-12.m4s")).status == 503
        for player in (first, second):
            assert (await playlist(client, player)).status == 200
            part = await client.get(f"/live/{PB}/{player}/source/part-11.m4s")
            assert part.status == 200
        assert hits.counts["max_viewers_per_stream"] == 3
        assert tracker.current_viewers(PB) == 2

        # the first player leaves (silent for 3 target durations): room for one more
        clock.now += 2.0
        assert (await playlist(client, second)).status == 200
        clock.now += 1.5
        tracker.sweep()
        assert tracker.current_viewers(PB) == 1
        third = await start_player(client, ua="Safari")
        assert isinstance(third, str)
        assert (await playlist(client, third, ua="Safari")).status == 200
        assert isinstance(await start_player(client), type(refused))


async def test_the_node_limit_counts_every_stream():
    tracker = ViewerTracker(clock=Clock(), max_viewers=3)
    async with tracked(registry_with(PB, "pb_two"), tracker) as client:
        players = [await start_player(client), await start_player(client, "pb_two")]
        players.append(await start_player(client, "pb_two"))
        assert all(isinstance(p, str) for p in players)
        refused = await start_player(client)
        assert refused.status == 503
        assert "maximum of 3 viewers" in (await refused.json())["error"]["message"]
        assert (await playlist(client, players[0])).status == 200
        assert (await playlist(client, players[2], "pb_two")).status == 200


async def test_without_limits_nobody_is_turned_away():
    tracker = ViewerTracker(clock=Clock())
    async with tracked(registry_with(PB), tracker) as client:
        players = [await start_player(client) for _ in range(20)]
        assert all(isinstance(p, str) for p in players)


async def test_the_edge_headers_of_a_client_that_is_not_the_edge_get_it_nowhere(caplog):
    """A fetch the edge shares is nobody's, so it passes the limits; the same mark
    from a client that is not a trusted hop is that client's own fetch, refused like
    any other, under the client's own address."""
    for trusted, status in (("127.0.0.1", 200), ("192.0.2.1", 503)):
        hops = TrustedHops(parse_networks(trusted))
        tracker = ViewerTracker(clock=Clock(), max_viewers_per_stream=1, hops=hops)
        async with tracked(registry_with(PB), tracker) as client:
            assert isinstance(await start_player(client), str)
            shared = {"X-Live-Edge": "shared", "X-Forwarded-For": "198.51.100.7"}
            response = await client.get(f"/live/{PB}/source/index.m3u8", headers=shared)
            assert response.status == status, (trusted, await response.text())
    assert "viewer from 127.0.0.1 refused" in caplog.text
    assert "198.51.100.7" not in caplog.text
