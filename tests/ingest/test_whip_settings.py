"""WHIP settings: port range, ICE servers and their Link headers."""

from __future__ import annotations

import pytest

from live.config import ConfigError, Settings, load_settings, port_range
from live.ingest.whip import IceServer, parse_ice_servers, whip_settings


def test_port_range():
    assert port_range("") == (0, 0)
    assert port_range("40000-40999") == (40000, 40999)
    assert port_range("5000") == (5000, 5000)
    for bad in ("x", "10-5", "0-10", "1-70000", "1-2-3"):
        with pytest.raises(ConfigError):
            port_range(bad)


def test_settings_from_environment():
    settings = load_settings(
        environ={
            "LIVE_WHIP_UDP_PORTS": "41000-41010",
            "LIVE_WHIP_CANDIDATE_HOST": "203.0.113.7",
            "LIVE_WHIP_ICE_SERVERS": (
                "stun:stun.example.net:3478, turn:turn.example.net?transport=udp"
            ),
            "LIVE_WHIP_TURN_USERNAME": "u",
            "LIVE_WHIP_TURN_CREDENTIAL": "p",
        }
    )
    whip = whip_settings(settings)
    assert (whip.ice.port_min, whip.ice.port_max) == (41000, 41010)
    assert whip.ice.sockets() == [("0.0.0.0", "203.0.113.7")]
    assert [s.link() for s in whip.ice_servers] == [
        '<stun:stun.example.net:3478>; rel="ice-server"',
        '<turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; '
        'credential="p"; credential-type="password"',
    ]
    with pytest.raises(ConfigError):
        load_settings(environ={"LIVE_WHIP_ICE_SERVERS": "http://nope"})


def test_specific_bind_address_is_announced_as_is():
    whip = whip_settings(Settings(whip_udp_host="127.0.0.1"))
    assert whip.ice.sockets() == [("127.0.0.1", "127.0.0.1")]
    assert whip.keyframe_interval_s == Settings().segment_target_s


def test_ice_server_urls_are_checked():
    assert parse_ice_servers("") == ()
    assert parse_ice_servers("stun:a", "u", "p") == (IceServer("stun:a"),)
    with pytest.raises(ValueError):
        parse_ice_servers("a.example:3478")
