"""The WHIP endpoint (RFC 9725): aiohttp routes on the root app.

    POST    /whip                 offer in, 201 + answer + Location out
    DELETE  /whip/{session_id}    end the publish
    OPTIONS /whip, /whip/{id}     CORS preflight, Accept-Post, ICE servers
    PATCH   /whip/{session_id}    405: no trickle, no ICE restart (the answer has
                                  every candidate, and clients re-POST instead)

Refusals use the API's JSON error body. The stream key comes as a Bearer token.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

from aiohttp import web

from live.api.errors import error_response
from live.attempts import peer_address
from live.broadcast.manager import PublishRefused, StreamManager
from live.config import Settings, port_range
from live.ingest.whip.offer import OfferRefused, choose, parse_offer
from live.ingest.whip.session import WhipSession
from live.ingest.whip.webrtc import IceSettings, PortRangeExhausted, check_versions, install_codecs
from live.limits import LimitHits
from live.transcode.video import H264Settings

log = logging.getLogger(__name__)

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Post, Accept-Patch",
    "Access-Control-Max-Age": "600",
}
_REFUSALS = {
    "unknown_key": (401, "unauthorized", "The stream key is not valid."),
    "banned": (403, "livestream_banned", "This livestream is banned."),
    "busy": (409, "livestream_live", "Another publisher is live on this stream key."),
    "limit": (503, "unavailable", "This server is at its limit of live streams; try later."),
    "rate_limited": (
        429,
        "rate_limited",
        "Too many failed attempts from this address; retry later.",
    ),
}


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN/TURN server announced to clients in a `Link: rel="ice-server"` header."""

    url: str
    username: str = ""
    credential: str = ""

    def link(self) -> str:
        text = f'<{self.url}>; rel="ice-server"'
        if self.username:
            text += f'; username="{self.username}"; credential="{self.credential}"'
            text += '; credential-type="password"'
        return text


@dataclass(frozen=True, slots=True)
class WhipSettings:
    ice: IceSettings = field(default_factory=IceSettings)
    ice_servers: tuple[IceServer, ...] = ()
    idle_timeout_s: float = 5.0
    connect_timeout_s: float = 15.0
    body_timeout_s: float = 30.0  # the offer must have arrived this long after the headers
    keyframe_interval_s: float = 1.0
    video: H264Settings = field(default_factory=H264Settings)


def parse_ice_servers(urls: str, username: str = "", credential: str = "") -> tuple[IceServer, ...]:
    """`"stun:a:3478, turn:b:3478?transport=udp"` → servers; TURN ones get the credentials."""
    servers = []
    for url in (u.strip() for u in urls.split(",")):
        if not url:
            continue
        if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise ValueError(f"not a STUN/TURN URL: {url!r}")
        is_turn = url.startswith("turn")
        servers.append(IceServer(url, username if is_turn else "", credential if is_turn else ""))
    return tuple(servers)


class WhipServer:
    def __init__(
        self, manager: StreamManager, settings: WhipSettings, limit_hits: LimitHits | None = None
    ) -> None:
        check_versions()
        install_codecs()
        self.manager = manager
        self.settings = settings
        self.limit_hits = limit_hits or LimitHits()
        self.sessions: dict[str, WhipSession] = {}

    def setup_routes(self, app: web.Application, path: str = "/whip") -> None:
        app.router.add_route("POST", path, self.post)
        app.router.add_route("OPTIONS", path, self.options)
        app.router.add_route("DELETE", path + "/{session_id}", self.delete)
        app.router.add_route("PATCH", path + "/{session_id}", self.patch)
        app.router.add_route("OPTIONS", path + "/{session_id}", self.options)

    # -- handlers -------------------------------------------------------------------------

    async def options(self, request: web.Request) -> web.Response:
        response = web.Response(status=204, headers=_CORS)
        response.headers["Accept-Post"] = "application/sdp"
        self._add_links(response)
        return response

    async def patch(self, request: web.Request) -> web.Response:
        if request.match_info["session_id"] not in self.sessions:
            return self._error(404, "session_not_found", "No such WHIP session.")
        response = self._error(
            405, "method_not_allowed", "Trickle ICE and ICE restarts are not supported."
        )
        response.headers["Allow"] = "DELETE, OPTIONS"
        return response

    async def delete(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session_id"])
        if session is None:
            return self._error(404, "session_not_found", "No such WHIP session.")
        await session.finish("publisher_disconnected")
        await self._end_now(session)
        return web.Response(status=200, headers=_CORS)

    async def post(self, request: web.Request) -> web.Response:
        try:
            return await self._post(request)
        except OfferRefused as refusal:
            return self._error(refusal.status, refusal.code, refusal.message, refusal.param)
        except PortRangeExhausted:
            response = self._error(503, "unavailable", "No UDP port is free for a new session.")
            response.headers["Retry-After"] = "5"
            return response
        except Exception:
            log.exception("WHIP POST failed")
            return self._error(500, "internal_error", "Internal server error")

    async def _post(self, request: web.Request) -> web.Response:
        # Who is asking comes first: nothing a client sent is looked at (type,
        # body) before its key is known good, so a stranger learns nothing more.
        stream_key = _bearer(request)
        if not stream_key:
            response = self._error(
                401, "unauthorized", "Send the stream key as Authorization: Bearer KEY."
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="whip"'
            return response
        remote = _remote(request)
        try:
            livestream = await self.manager.authorise(
                stream_key, protocol="whip", remote_addr=remote
            )
        except PublishRefused as refusal:
            return self._refused(refusal)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/sdp":
            return self._error(
                415,
                "unsupported_media_type",
                "A WHIP offer is sent as application/sdp.",
                "Content-Type",
            )
        try:
            async with asyncio.timeout(self.settings.body_timeout_s):
                body = await request.text()
        except UnicodeDecodeError:
            raise OfferRefused(400, "invalid_sdp", "The SDP offer is not UTF-8 text.") from None
        except TimeoutError:
            self.limit_hits.hit(
                "http_body_timeout_s",
                f"WHIP offer from {_remote(request)} refused: its body did not arrive within "
                f"{self.settings.body_timeout_s:g} s",
            )
            response = self._error(
                408, "request_timeout",
                f"The offer did not arrive within {self.settings.body_timeout_s:g} s.",
            )  # fmt: skip
            response.force_close()
            return response
        sections = parse_offer(body)
        choice = choose(sections, livestream.transcode)
        session_id = secrets.token_urlsafe(16)
        try:
            publisher = await self.manager.begin_publish(
                stream_key,
                protocol="whip",
                remote_addr=remote,
                stop=lambda reason, message="": self._stop(session_id, reason),
                livestream=livestream,
            )
        except PublishRefused as refusal:
            return self._refused(refusal)
        publisher.set_encoder(request.headers.get("User-Agent"))
        session = WhipSession(
            session_id,
            publisher,
            choice,
            ice=self.settings.ice,
            idle_timeout_s=self.settings.idle_timeout_s,
            connect_timeout_s=self.settings.connect_timeout_s,
            keyframe_interval_s=self.settings.keyframe_interval_s,
            on_closed=lambda s: self.sessions.pop(s.id, None),
            video_settings=self.settings.video,
            limit_hits=self.limit_hits,
        )
        self.sessions[session_id] = session
        try:
            answer = await session.negotiate(body)
        except BaseException:
            await session.finish("error")
            await self._end_now(session)
            raise
        location = f"{request.path.rstrip('/')}/{session_id}"
        response = web.Response(
            status=201,
            body=answer.encode(),
            content_type="application/sdp",
            headers={**_CORS, "Location": location, "ETag": f'"{session_id}"'},
        )
        self._add_links(response)
        log.info(
            "WHIP session %s for %s from %s: %s",
            session_id,
            livestream.id,
            remote,
            session.codecs,
        )
        return response

    # -- helpers --------------------------------------------------------------------------

    def _stop(self, session_id: str, reason: str) -> None:
        """The manager closes this publish (ban, delete, kick, takeover, shutdown)."""
        session = self.sessions.get(session_id)
        if session is not None:
            session.finish_soon(reason)

    async def _end_now(self, session: WhipSession) -> None:
        """A deliberate end (DELETE, a failed POST) is not a dropped connection: the
        session ends now instead of waiting out the reconnect window."""
        await self.manager.end_left(
            session.publisher, session.end_reason or "publisher_disconnected"
        )

    def _refused(self, refusal: PublishRefused) -> web.Response:
        status, code, message = _REFUSALS[refusal.reason]
        response = self._error(status, code, message)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="whip", error="invalid_token"'
        if refusal.retry_after_s is not None:
            response.headers["Retry-After"] = str(refusal.retry_after_s)
        elif status == 503:
            response.headers["Retry-After"] = "10"
        return response

    def _error(
        self, status: int, code: str, message: str, param: str | None = None
    ) -> web.Response:
        response = error_response(status, code, message, param)
        response.headers.update(_CORS)
        return response

    def _add_links(self, response: web.StreamResponse) -> None:
        for server in self.settings.ice_servers:
            response.headers.add("Link", server.link())

    async def close(self) -> None:
        """End every session (the manager has usually begun to already) and wait
        until their peer connections and codec threads are closed."""
        for session in list(self.sessions.values()):
            await session.finish("server_shutdown")


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _remote(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if peer:
        return peer_address(peer[0], peer[1])
    return request.remote or "?"


def whip_settings(settings: Settings) -> WhipSettings:
    """WhipSettings from the server's flat Settings (names `whip_*`)."""
    port_min, port_max = port_range(settings.whip_udp_ports)
    return WhipSettings(
        ice=IceSettings(
            bind_host=settings.whip_udp_host,
            candidate_host=settings.whip_candidate_host,
            port_min=port_min,
            port_max=port_max,
        ),
        ice_servers=parse_ice_servers(
            settings.whip_ice_servers, settings.whip_turn_username, settings.whip_turn_credential
        ),
        idle_timeout_s=settings.whip_idle_timeout_s,
        connect_timeout_s=settings.whip_connect_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        # A segment can only start on a keyframe: ask WebRTC senders for one as often.
        keyframe_interval_s=settings.segment_target_s,
    )
