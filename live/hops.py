"""Which peers may speak for the viewer behind them.

Two kinds of hop stand in front of a node: the caching edge (`configs/edge.vcl`),
which marks the playback fetches it passes (`X-Live-Edge`: "count" for one request
per player and segment, "shared" for what it caches for everyone), and another
cluster node that proxies a viewer's request to the node running the stream
(`X-Live-Forwarded`). Each adds the address it saw to `X-Forwarded-For`. The node
believes those headers to count viewers, to apply the viewer limits and the
per-address cap on blocking requests, and to stop a proxied request from being
proxied again.

A client that reaches a node directly can send the same headers, so they are
believed only from peers in `trusted_proxies`: by default loopback and the private
networks (RFC 1918, IPv6 unique local), where an edge and the other nodes are in
any deployment of a few machines, while viewers on the internet are not. From
anyone else they are ignored, as if absent (and logged once per address, which
shows an edge left out of the setting): the client is a viewer like any other,
known by its own address, and "shared" no longer lets it past the audience limits.
A node whose HTTP port untrusted clients on a private network can reach narrows the
setting to the edge's and the nodes' addresses.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from live.hls.request import HlsRequest

log = logging.getLogger(__name__)

DEFAULT_TRUSTED = "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
EDGE_HEADER = "X-Live-Edge"
FORWARDED_HEADER = "X-Live-Forwarded"
FORWARDED_FOR_HEADER = "X-Forwarded-For"
# Remote addresses remembered with their verdict; a node's peers are few, but any
# client's address passes through here when it sends a hop header.
_CACHE_LIMIT = 4096

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks ("10.0.0.0/8, ::1"); ValueError names
    the entry that is neither."""
    networks = []
    for entry in filter(None, (item.strip() for item in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as error:
            raise ValueError(f"not an address or network: {entry!r}") from error
    return tuple(networks)


class TrustedHops:
    """The peers whose hop headers are believed (`trusted_proxies`)."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._verdicts: dict[str, bool] = {}
        self._ignored: set[str] = set()

    def trusts(self, remote: str | None) -> bool:
        """Whether the peer at `remote` (a socket's address) is a trusted hop."""
        if not remote:
            return False
        verdict = self._verdicts.get(remote)
        if verdict is None:
            verdict = self._judge(remote)
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[remote] = verdict
        return verdict

    def _judge(self, remote: str) -> bool:
        try:
            address = ipaddress.ip_address(remote.split("%", 1)[0])
        except ValueError:
            return False  # a Unix socket's peer, say: not a network hop
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def _believed(self, remote: str | None) -> bool:
        """`trusts`, for a request that carries hop headers: the first ones from an
        address not trusted are logged."""
        remote = remote or ""
        if self.trusts(remote):
            return True
        if remote not in self._ignored:
            if len(self._ignored) >= _CACHE_LIMIT:
                self._ignored.clear()
            self._ignored.add(remote)
            log.warning(
                "hop headers (%s, %s, %s) from %s ignored: not in trusted_proxies",
                EDGE_HEADER, FORWARDED_HEADER, FORWARDED_FOR_HEADER, remote or "an unknown peer",
            )  # fmt: skip
        return False

    def edge_mark(self, request: HlsRequest) -> str | None:
        """The edge's `X-Live-Edge` on `request`, None when absent or not believed."""
        mark = request.headers.get(EDGE_HEADER)
        if mark is None or not self._believed(request.remote):
            return None
        return mark

    def forwarded(self, request: HlsRequest) -> bool:
        """Whether `request` was proxied here by another node."""
        return FORWARDED_HEADER in request.headers and self._believed(request.remote)

    def client_address(self, request: HlsRequest) -> str:
        """The viewer's address: the peer's, or, behind trusted hops, the address the
        hop in front of this node saw: another node that proxied the request here
        (the last `X-Forwarded-For` entry, which it added), the edge (the entry it
        added), or both (the edge's entry, then the node's)."""
        remote = request.remote or ""
        headers = request.headers
        hops = (FORWARDED_HEADER in headers) + (EDGE_HEADER in headers)
        if hops and self._believed(remote):
            entries = headers.get(FORWARDED_FOR_HEADER, "").split(",")
            if len(entries) >= hops and entries[-hops].strip():
                return entries[-hops].strip()
        return remote
