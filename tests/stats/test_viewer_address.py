"""A viewer proxied by another cluster node is counted by its own address, not by the
node's, so viewers behind one node are not merged into one."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from live.stats.viewers import viewer_address


def _request(headers: dict[str, str]):
    request = make_mocked_request("GET", "/live/pb/index.m3u8", headers=headers)
    return request


def test_a_direct_viewer_is_its_peer() -> None:
    request = _request({"X-Forwarded-For": "198.51.100.1"})  # not from a node: ignored
    assert viewer_address(request) == (request.remote or "")


def test_a_proxied_viewer_is_the_address_the_node_saw() -> None:
    request = _request({"X-Live-Forwarded": "1", "X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
    assert viewer_address(request) == "203.0.113.9"


def test_a_viewer_behind_the_edge_is_the_address_the_edge_saw() -> None:
    edge = {"X-Live-Edge": "count", "X-Forwarded-For": "10.0.0.1, 198.51.100.7"}
    assert viewer_address(_request(edge)) == "198.51.100.7"
    # ... and through the edge, then another node: the edge's entry, then the node's
    both = {**edge, "X-Live-Forwarded": "1", "X-Forwarded-For": "198.51.100.7, 192.0.2.5"}
    assert viewer_address(_request(both)) == "198.51.100.7"
