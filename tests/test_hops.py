"""Hop headers (the edge's mark, a proxying node's, the addresses they add) are
believed from trusted peers only: a client that reaches a node directly cannot pass
for the edge, hide behind an address of its choosing, or get past the viewer limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from multidict import CIMultiDict

from live.config import ConfigError, Settings
from live.hops import TrustedHops, parse_networks


@dataclass
class FakeRequest:
    remote: str | None
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    method: str = "GET"
    raw_path: str = "/live/pb/index.m3u8"
    transport: None = None


LOCAL = TrustedHops(parse_networks("127.0.0.0/8, ::1"))


def _request(remote: str | None, **headers: str) -> FakeRequest:
    return FakeRequest(remote, CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))


@pytest.mark.parametrize(
    ("remote", "trusted"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack socket's IPv4 peer
        ("fe80::1%eth0", False),
        ("10.1.2.3", False),
        ("203.0.113.9", False),
        ("", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_trust_follows_the_networks(remote: str | None, trusted: bool) -> None:
    assert LOCAL.trusts(remote) is trusted
    assert LOCAL.trusts(remote) is trusted  # the remembered verdict is the same


def test_networks_are_addresses_or_prefixes() -> None:
    hops = TrustedHops(parse_networks("10.0.0.0/8,192.0.2.7, fd00::/8"))
    assert hops.trusts("10.200.0.1") and hops.trusts("192.0.2.7") and hops.trusts("fd12::3")
    assert not hops.trusts("192.0.2.8") and not hops.trusts("127.0.0.1")
    assert parse_networks(" ") == ()
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        parse_networks("127.0.0.1, 10.0.0.0/33")


def test_by_default_loopback_and_the_private_networks_are_trusted() -> None:
    hops = TrustedHops(parse_networks(Settings().trusted_proxies))
    for peer in ("127.0.0.1", "::1", "10.4.0.2", "172.18.0.3", "192.168.1.20", "fd00::7"):
        assert hops.trusts(peer), peer
    for peer in ("203.0.113.9", "172.32.0.1", "2001:db8::1", "100.64.0.1"):
        assert not hops.trusts(peer), peer


def test_hop_headers_from_an_untrusted_peer_are_logged_once_per_address(caplog) -> None:
    hops = TrustedHops(parse_networks("127.0.0.1"))
    for _ in range(3):
        for remote in ("203.0.113.9", "198.51.100.1"):
            hops.client_address(_request(remote, X_Live_Edge="count", X_Forwarded_For="a"))
            hops.edge_mark(_request(remote, X_Live_Edge="count"))
    hops.client_address(_request("203.0.113.10"))  # no hop header: nothing to say
    ignored = [r.getMessage() for r in caplog.records if "not in trusted_proxies" in r.message]
    assert len(ignored) == 2 and "203.0.113.9" in ignored[0] and "198.51.100.1" in ignored[1]


def test_the_setting_is_checked_at_start() -> None:
    Settings(trusted_proxies="").validate()  # nobody: every request is its peer's
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Settings(trusted_proxies="edge.example.com").validate()


def test_a_direct_viewer_is_its_peer_whatever_it_says() -> None:
    spoofed = _request(
        "203.0.113.9", X_Live_Edge="shared", X_Live_Forwarded="1", X_Forwarded_For="198.51.100.1"
    )
    assert LOCAL.client_address(spoofed) == "203.0.113.9"
    assert LOCAL.edge_mark(spoofed) is None
    assert not LOCAL.forwarded(spoofed)
    assert LOCAL.client_address(_request("203.0.113.9")) == "203.0.113.9"


def test_a_proxied_viewer_is_the_address_the_node_saw() -> None:
    proxied = _request(
        "127.0.0.1", X_Live_Forwarded="1", X_Forwarded_For="198.51.100.1, 203.0.113.9"
    )
    assert LOCAL.client_address(proxied) == "203.0.113.9"
    assert LOCAL.forwarded(proxied)


def test_a_viewer_behind_the_edge_is_the_address_the_edge_saw() -> None:
    edge = {"X_Live_Edge": "count", "X_Forwarded_For": "10.0.0.1, 198.51.100.7"}
    assert LOCAL.client_address(_request("127.0.0.1", **edge)) == "198.51.100.7"
    assert LOCAL.edge_mark(_request("127.0.0.1", **edge)) == "count"
    # ... and through the edge, then another node: the edge's entry, then the node's
    both = {**edge, "X_Live_Forwarded": "1", "X_Forwarded_For": "198.51.100.7, 192.0.2.5"}
    assert LOCAL.client_address(_request("::1", **both)) == "198.51.100.7"


def test_a_trusted_hop_without_the_address_it_saw_leaves_the_peer() -> None:
    assert LOCAL.client_address(_request("127.0.0.1", X_Live_Edge="count")) == "127.0.0.1"
    hops = _request("127.0.0.1", X_Live_Edge="count", X_Live_Forwarded="1", X_Forwarded_For="a")
    assert LOCAL.client_address(hops) == "127.0.0.1"
