"""whip_connect_timeout_s: an offer whose ICE and DTLS never connect (a client that
posts and walks away) holds its session, UDP port and stream only that long."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack
from waiting import eventually

from live.broadcast.manager import SessionRules, StreamManager
from live.ingest.whip import WhipServer
from live.ingest.whip.server import WhipSettings
from live.ingest.whip.webrtc import IceSettings
from live.limits import LimitHits
from live.store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = await SqliteStore.open(tmp_path / "live.db")
    try:
        yield instance
    finally:
        await instance.close()


async def test_an_offer_that_never_connects_is_ended_after_the_connect_timeout(store):
    hits = LimitHits()
    manager = StreamManager(store, None, SessionRules())
    server = WhipServer(
        manager,
        WhipSettings(ice=IceSettings(bind_host="127.0.0.1"), connect_timeout_s=1.0),
        hits,
    )
    app = web.Application()
    server.setup_routes(app)
    livestream = await store.create_livestream(name="walked away", reconnect_window_s=0)
    offerer = RTCPeerConnection()
    offerer.addTransceiver(AudioStreamTrack(), direction="sendonly")
    offerer.addTransceiver(VideoStreamTrack(), direction="sendonly")
    try:
        await offerer.setLocalDescription(await offerer.createOffer())
        async with TestClient(TestServer(app)) as client:
            response = await client.post(
                "/whip",
                data=offerer.localDescription.sdp,
                headers={
                    "Content-Type": "application/sdp",
                    "Authorization": f"Bearer {livestream.stream_key}",
                },
            )
            assert response.status == 201  # the answer is never applied: no ICE, no DTLS
            assert len(server.sessions) == 1 and livestream.id in manager.broadcasts
            await eventually(lambda: not server.sessions, 10.0)
        await eventually(lambda: livestream.id not in manager.broadcasts, 5.0)
        (session,), _ = await store.list_sessions(livestream.id)
        assert session.end_reason == "timeout"
        assert hits.counts["whip_connect_timeout_s"] == 1
    finally:
        await offerer.close()
        await server.close()
        await manager.shutdown()
