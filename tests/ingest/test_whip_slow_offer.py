"""A WHIP offer whose body stops arriving (a slowloris after good headers) is
answered 408 after `body_timeout_s` (and the connection is not kept alive: aiohttp
closes it once its lingering for the rest of the body ends); nothing is held."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestServer

from live.ingest.whip import WhipServer
from live.ingest.whip.server import WhipSettings
from live.limits import LimitHits


class _Manager:
    """What WHIP asks of the stream manager before it reads an offer: the key's stream."""

    async def authorise(self, stream_key: str, *, protocol: str, remote_addr: str):
        assert stream_key == "sk_good"
        return SimpleNamespace(id="ls_1", transcode="auto")


async def test_an_offer_that_stops_arriving_gets_408_and_the_connection_closes():
    hits = LimitHits()
    server = WhipServer(_Manager(), WhipSettings(body_timeout_s=0.5), hits)
    app = web.Application()
    server.setup_routes(app)
    async with TestServer(app) as test_server:
        reader, writer = await asyncio.open_connection(test_server.host, test_server.port)
        try:
            writer.write(
                b"POST /whip HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_good\r\n"
                b"Content-Type: application/sdp\r\nContent-Length: 2000\r\n\r\nv=0\r\n"
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await asyncio.wait_for(reader.readexactly(length), 10)
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert hits.counts["http_body_timeout_s"] == 1
    assert server.sessions == {}
