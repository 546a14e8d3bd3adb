"""What a node passes on when it proxies a viewer's request to the node running the
stream: its own mark and the viewer's address always, the edge's mark and the
addresses before it only when they came from a trusted hop (live/hops.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.cluster.playback import ClusterPlayback
from live.hls import HlsRegistry
from live.hops import TrustedHops, parse_networks

HOP_HEADERS = ("X-Live-Edge", "X-Live-Forwarded", "X-Forwarded-For")


class OwnerAt:
    """Every stream runs on the node at `url`."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def url_for(self, playback_id: str) -> str | None:
        return self.url


async def _echo_hop_headers(request: web.Request) -> web.Response:
    return web.json_response({h: request.headers.get(h) for h in HOP_HEADERS})


async def _not_here(request: web.Request) -> web.Response:
    return web.json_response({"answered": "locally"}, status=404)


@asynccontextmanager
async def proxying_node(trusted: str) -> AsyncIterator[TestClient]:
    owner = web.Application()
    owner.router.add_get("/live/{tail:.*}", _echo_hop_headers)
    async with TestServer(owner) as owner_server:
        url = str(owner_server.make_url("")).rstrip("/")
        playback = ClusterPlayback(
            HlsRegistry(), OwnerAt(url), hops=TrustedHops(parse_networks(trusted))
        )  # type: ignore[arg-type]
        node = web.Application(middlewares=[playback.middleware])
        node.router.add_get("/live/{tail:.*}", _not_here)
        try:
            async with TestClient(TestServer(node)) as client:
                yield client
        finally:
            await playback.close()


async def test_a_clients_hop_headers_are_not_passed_on() -> None:
    async with proxying_node("192.0.2.1") as client:
        spoofed = {"X-Live-Edge": "count", "X-Forwarded-For": "198.51.100.7"}
        response = await client.get("/live/pb_x/index.m3u8", headers=spoofed)
        assert response.status == 200
        assert await response.json() == {
            "X-Live-Edge": None,
            "X-Live-Forwarded": "1",
            "X-Forwarded-For": "127.0.0.1",
        }
        # a client saying it was forwarded already is proxied all the same
        response = await client.get("/live/pb_x/index.m3u8", headers={"X-Live-Forwarded": "1"})
        assert (await response.json())["X-Live-Forwarded"] == "1"


async def test_the_edges_mark_and_the_address_it_saw_go_on() -> None:
    async with proxying_node("127.0.0.1") as client:
        edge = {"X-Live-Edge": "count", "X-Forwarded-For": "198.51.100.7"}
        response = await client.get("/live/pb_x/index.m3u8", headers=edge)
        assert await response.json() == {
            "X-Live-Edge": "count",
            "X-Live-Forwarded": "1",
            "X-Forwarded-For": "198.51.100.7, 127.0.0.1",
        }
        # a request another node proxied here is not proxied again
        response = await client.get("/live/pb_x/index.m3u8", headers={"X-Live-Forwarded": "1"})
        assert response.status == 404
