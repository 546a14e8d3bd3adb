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
    request = _request(
        {"X-Live-Forwarded": "1", "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    )
    assert viewer_address(request) == "203.0.113.9"
