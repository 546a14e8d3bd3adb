"""Viewers on any node: a `/live` request for a stream another node runs is proxied
to that node (`cluster_playback = "proxy"`, the default: blocking playlist reloads
wait there, parts stream through as they arrive) or redirected to it
(`"redirect"`: cheaper for this node, but the viewer must reach every node).

A proxied request carries `X-Live-Forwarded` and the viewer's address at the end
of `X-Forwarded-For`, and the edge's mark when the edge sent it; what a client that
is not a trusted hop (live/hops.py) says in those headers is not passed on."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from live.cluster.leases import RedisLeases
from live.cluster.nodes import NodeRegistry
from live.hls import HlsRegistry
from live.hops import EDGE_HEADER, FORWARDED_FOR_HEADER, FORWARDED_HEADER, TrustedHops
from live.store.base import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Hop-by-hop and length headers are the proxy's own business.
_SKIP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Content-Length",
        "Upgrade",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
    )
)
_FORWARD_HEADERS = (
    "Accept",
    "Accept-Encoding",
    "Range",
    "User-Agent",
    "If-None-Match",
    "If-Modified-Since",
)
_OWNER_CACHE_S = 1.0


# Idle connections to owners are kept this long (see `_proxy`).
_IDLE_CONNECTION_S = 4.0


class OwnerLookup:
    """Which node's HTTP base serves a playback id now (None: this node, or none)."""

    def __init__(self, store: Store, leases: RedisLeases, nodes: NodeRegistry) -> None:
        self.store = store
        self.leases = leases
        self.nodes = nodes
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def url_for(self, playback_id: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(playback_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        url = None
        livestream = await self.store.get_livestream_by_playback_id(playback_id)
        if livestream is not None:
            holder = await self.leases.holder(livestream.id)
            if holder is not None and holder.node_id != self.leases.node_id:
                url = await self.nodes.url_of(holder.node_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[playback_id] = (now + _OWNER_CACHE_S, url)
        return url


class ClusterPlayback:
    """Middleware in front of the `/live` routes of a cluster node."""

    def __init__(
        self,
        hls: HlsRegistry,
        owners: OwnerLookup,
        *,
        hops: TrustedHops,
        mode: str = "proxy",
        timeout_s: float = 30.0,
    ) -> None:
        """`hops`: the peers whose hop headers are believed and passed on."""
        self.hls = hls
        self.owners = owners
        self.hops = hops
        self.mode = mode
        self.timeout_s = timeout_s
        self._client: aiohttp.ClientSession | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.raw_path
        if not path.startswith("/live/") or request.method not in ("GET", "HEAD"):
            return await handler(request)
        playback_id = path[6:].split("/", 1)[0]
        local = self.hls.get(playback_id)
        if local is not None and not local.ended:
            return await handler(request)
        # Not here, or only the lingering end of a session: the stream may be live
        # again on another node.
        try:
            owner = await self.owners.url_for(playback_id)
        except Exception as error:  # the cluster's state is unreachable: answer locally
            log.warning("cannot look up the owner of %s: %s", playback_id, error)
            owner = None
        if owner is None or self.hops.forwarded(request):
            return await handler(request)
        if self.mode == "redirect":
            raise web.HTTPFound(owner + request.raw_path)
        return await self._proxy(request, owner)

    async def _proxy(self, request: web.Request, owner: str) -> web.StreamResponse:
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_read=self.timeout_s),
                auto_decompress=False,
                # An idle connection is dropped before the owner's own keep-alive
                # (`http_header_timeout_s`, 10 s by default) can close it under a
                # request reusing it.
                connector=aiohttp.TCPConnector(keepalive_timeout=_IDLE_CONNECTION_S),
            )
        headers = {h: request.headers[h] for h in _FORWARD_HEADERS if h in request.headers}
        headers[FORWARDED_HEADER] = "1"
        peer = request.remote or ""
        forwarded_for = None
        if self.hops.trusts(peer):  # the edge: its mark and the address it saw go on
            forwarded_for = request.headers.get(FORWARDED_FOR_HEADER)
            if EDGE_HEADER in request.headers:
                headers[EDGE_HEADER] = request.headers[EDGE_HEADER]
        headers[FORWARDED_FOR_HEADER] = f"{forwarded_for}, {peer}" if forwarded_for else peer
        response: web.StreamResponse | None = None
        try:
            async with self._client.request(
                request.method,
                owner + request.raw_path,
                headers=headers,
                allow_redirects=False,
            ) as upstream:
                response = web.StreamResponse(status=upstream.status)
                for name, value in upstream.headers.items():
                    if name.lower() not in _SKIP_HEADERS:
                        response.headers.add(name, value)
                if upstream.content_length is not None:
                    response.content_length = upstream.content_length
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("proxying %s to %s failed: %s", request.raw_path, owner, error)
            if response is not None and response.prepared:
                # Mid-body: the viewer sees a cut response and retries.
                if request.transport is not None:
                    request.transport.close()
                return response
            raise web.HTTPBadGateway(text="the node that runs this stream did not answer") from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
