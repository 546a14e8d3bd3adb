"""Viewer accounting from HLS requests, with a fake clock and fake requests."""

from __future__ import annotations

from types import SimpleNamespace

from aiohttp.test_utils import make_mocked_request

from live.hls import HlsRegistry, HlsStream, HlsWindow, Rendition
from live.hls.paths import parse_live_target
from live.hops import EDGE_HEADER, TrustedHops, parse_networks
from live.stats.viewers import EDGE_COUNT, ViewerTracker

PB = "pb_test"
EDGE = "192.0.2.1"  # the edge's address, which the trackers below trust


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(path: str, ua: str = "hls.js", ip: str = "203.0.113.9", **headers: str):
    headers = {"User-Agent": ua, **headers}
    return make_mocked_request("GET", path, headers=headers, transport=_Transport(ip))


def _on_request(tracker: ViewerTracker, path: str, size: int, **kwargs: str) -> None:
    target = parse_live_target(path)
    assert target is not None, path
    tracker.on_request(_request(path, **kwargs), target, size)


class _Transport:
    def __init__(self, ip: str) -> None:
        self.ip = ip

    def get_extra_info(self, name: str, default=None):
        return (self.ip, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def _start_player(tracker: ViewerTracker, ua: str = "hls.js", ip: str = "203.0.113.9") -> str:
    player = tracker.start_player(_request(f"/live/{PB}/index.m3u8", ua, ip), PB)
    assert player is not None
    return player


def _fetch(tracker, player: str | None, size=1000, ua="hls.js", ip="203.0.113.9"):
    prefix = f"{player}/" if player else ""
    _on_request(tracker, f"/live/{PB}/{prefix}source/part-1.m4s", size, ua=ua, ip=ip)


def test_a_multivariant_alone_is_not_a_view() -> None:
    tracker = ViewerTracker(clock=Clock())
    _start_player(tracker)
    _on_request(tracker, f"/live/{PB}/index.m3u8", 300)
    assert tracker.current_viewers(PB) == 0
    assert tracker.report(PB, live=True)["total_views"] == 0


def test_two_players_behind_one_address_are_two_viewers() -> None:
    tracker = ViewerTracker(clock=Clock())
    first, second = _start_player(tracker), _start_player(tracker)
    assert first != second
    for player in (first, second, first, second):
        _fetch(tracker, player)
    report = tracker.report(PB, live=True)
    assert report["current_viewers"] == 2
    assert report["total_views"] == 2
    assert report["unique_viewers"] == 1  # one address + user agent
    assert report["bytes_out"] == 4000
    assert {p["id"] for p in report["players"]} == {first, second}
    assert all(p["rendition"] == "source" and p["bytes_out"] == 2000 for p in report["players"])
    assert report["renditions"] == {"source": {"current_viewers": 2, "bytes_out": 4000}}


def test_requests_without_an_id_fall_back_to_address_and_user_agent() -> None:
    tracker = ViewerTracker(clock=Clock())
    _fetch(tracker, None, ua="VLC/3.0")
    _fetch(tracker, None, ua="VLC/3.0")
    _fetch(tracker, None, ua="ffplay")
    _fetch(tracker, None, ua="ffplay", ip="198.51.100.1")
    report = tracker.report(PB, live=True)
    assert report["current_viewers"] == 3
    assert report["unique_viewers"] == 3


def test_players_leave_after_three_target_durations() -> None:
    clock = Clock()
    tracker = ViewerTracker(clock=clock, default_target_duration=2)
    players = [_start_player(tracker) for _ in range(3)]
    for player in players:
        _fetch(tracker, player)
    clock.now += 5.9
    _fetch(tracker, players[0])  # still watching
    clock.now += 0.2  # the others: 6.1 s > 3 x 2 s
    tracker.sweep()
    report = tracker.report(PB, live=True)
    assert report["current_viewers"] == 1
    assert report["peak_viewers"] == 3
    assert report["total_views"] == 3
    clock.now += 6.1
    tracker.sweep()
    assert tracker.current_viewers(PB) == 0
    assert tracker.report(PB, live=True)["watch_time_s"] == 5.9  # 5.9 + 0 + 0


def test_watch_time_counts_active_players() -> None:
    clock = Clock()
    tracker = ViewerTracker(clock=clock)
    player = _start_player(tracker)
    _fetch(tracker, player)
    clock.now += 2
    _fetch(tracker, player)
    assert tracker.report(PB, live=True)["watch_time_s"] == 2.0


def test_session_totals_roll_the_period() -> None:
    clock = Clock()
    tracker = ViewerTracker(clock=clock)
    for _ in range(4):
        _fetch(tracker, _start_player(tracker))
    broadcast = SimpleNamespace(livestream=SimpleNamespace(playback_id=PB))
    assert tracker.session_totals(broadcast) == {"peak_viewers": 4, "total_views": 4}
    # After the end: the last session's figures; players still around are no views yet
    report = tracker.report(PB, live=False)
    assert (report["peak_viewers"], report["total_views"], report["current_viewers"]) == (4, 4, 0)
    assert tracker.report(PB, live=True)["total_views"] == 0  # the next session starts at 0


def test_unknown_but_well_formed_ids_are_counted_as_players() -> None:
    """An id from before a restart (or made up) is a player of its own; a malformed one
    never reaches the tracker (`parse_live_target` refuses the path)."""
    tracker = ViewerTracker(clock=Clock())
    _fetch(tracker, "pl_unknownbutwellformed")
    _fetch(tracker, None)
    assert tracker.current_viewers(PB) == 2
    assert parse_live_target(f"/live/{PB}/%22%3E<x>/source/part-1.m4s") is None


def test_unknown_stream_has_no_report() -> None:
    assert ViewerTracker().report("pb_nothing", live=False) is None


def _fetch_rendition(tracker, player: str, rendition: str, size: int, query: str = "") -> None:
    _on_request(tracker, f"/live/{PB}/{player}/{rendition}/part-1.m4s{query}", size)


def test_bytes_follow_rendition_switches_departures_and_sessions() -> None:
    """A request only adds to its player's bytes; every total read back is exact."""
    clock = Clock()
    tracker = ViewerTracker(clock=clock, default_target_duration=2)
    player, other = _start_player(tracker), _start_player(tracker)
    _fetch_rendition(tracker, player, "source", 1000)
    _fetch_rendition(tracker, player, "480p", 300, "?_HLS_msn=3&_HLS_part=1")
    _fetch_rendition(tracker, player, "source", 50)
    _fetch_rendition(tracker, other, "480p", 7)
    report = tracker.report(PB, live=True)
    assert report["bytes_out"] == 1357
    assert report["renditions"] == {
        "source": {"current_viewers": 1, "bytes_out": 1050},
        "480p": {"current_viewers": 1, "bytes_out": 307},
    }
    clock.now += 5  # `other` keeps fetching, `player` goes quiet and leaves
    _fetch_rendition(tracker, other, "480p", 3)
    clock.now += 2
    tracker.sweep()
    report = tracker.report(PB, live=True)
    assert report["current_viewers"] == 1
    assert report["bytes_out"] == 1360  # a departed player's bytes stay in the session
    assert report["renditions"]["source"]["bytes_out"] == 1050
    assert report["renditions"]["480p"]["bytes_out"] == 310

    assert tracker.roll(PB)["bytes_out"] == 1360
    _fetch_rendition(tracker, other, "480p", 40)
    report = tracker.report(PB, live=True)
    assert report["bytes_out"] == 40  # the new session starts from zero
    assert report["renditions"] == {"480p": {"current_viewers": 1, "bytes_out": 40}}
    assert report["players"][0]["bytes_out"] == 50  # a player's own figure goes on


def _two_renditions() -> HlsRegistry:
    """Two renditions of two whole segments each, parts of 1000 and 300 bytes."""
    registry = HlsRegistry()
    windows = [HlsWindow(target_duration=1) for _ in range(2)]
    for size, window in zip((1000, 300), windows, strict=True):
        window.set_init(b"init")
        for _ in range(2):  # two whole segments of five parts
            window.start_segment()
            for n in range(5):
                window.add_part(bytes(size), 0.2, n == 0)
        window.start_segment()
    renditions = [Rendition("source", windows[0], 3_000_000), Rendition("480p", windows[1], 900)]
    registry.register(HlsStream(PB, renditions))
    return registry


def test_a_request_the_edge_passes_credits_the_segment_played_from_its_cache() -> None:
    """Behind the edge a node sees one request per player and segment (marked by the
    edge); the player is credited with the newest whole segment of its rendition."""
    registry = _two_renditions()
    segment = 5 * 300
    tracker = ViewerTracker(registry, clock=Clock(), hops=TrustedHops(parse_networks(EDGE)))
    player = _start_player(tracker)
    path = f"/live/{PB}/{player}/480p/index.m3u8?_HLS_msn=2&_HLS_part=1"
    _on_request(tracker, path, 400, ip=EDGE, **{EDGE_HEADER: EDGE_COUNT})
    _on_request(tracker, path, 400)  # straight to the node: its own parts count instead
    # what the edge fetches once for all its players is nobody's
    _on_request(tracker, f"/live/{PB}/480p/part-3.m4s", 300, ip=EDGE, **{EDGE_HEADER: "shared"})
    report = tracker.report(PB, live=True)
    assert report["current_viewers"] == 1
    assert report["players"][0]["bytes_out"] == 400 + segment + 400
    assert report["players"][0]["rendition"] == "480p"
    assert report["renditions"]["480p"]["bytes_out"] == 800 + segment


def test_a_client_that_is_not_the_edge_gets_no_credit_for_its_marks() -> None:
    registry = _two_renditions()
    tracker = ViewerTracker(registry, clock=Clock(), hops=TrustedHops(parse_networks(EDGE)))
    player = _start_player(tracker)
    path = f"/live/{PB}/{player}/480p/index.m3u8?_HLS_msn=2&_HLS_part=1"
    _on_request(tracker, path, 400, **{EDGE_HEADER: EDGE_COUNT})  # from 203.0.113.9
    # "shared" from a client is a fetch of its own: it is counted, as a new viewer
    part = f"/live/{PB}/480p/part-3.m4s"
    _on_request(tracker, part, 300, ip="198.51.100.4", **{EDGE_HEADER: "shared"})
    report = tracker.report(PB, live=True)
    assert report["current_viewers"] == 2
    assert sorted(p["bytes_out"] for p in report["players"]) == [300, 400]


async def test_the_sweep_runs_only_while_some_stream_is_tracked() -> None:
    import asyncio

    from live.stats.viewers import RETAIN_IDLE_S

    clock = Clock()
    tracker = ViewerTracker(clock=clock, default_target_duration=2)
    tracker.start(interval_s=0.01)
    assert tracker._task is None  # an idle server: no timer
    player = _start_player(tracker)
    _fetch(tracker, player)
    assert tracker._task is not None and not tracker._task.done()
    clock.now += 7  # the player leaves...
    await asyncio.sleep(0.05)
    assert tracker.current_viewers(PB) == 0 and not tracker._task.done()
    clock.now += RETAIN_IDLE_S + 1  # ...and the ended stream is forgotten
    await asyncio.wait_for(tracker._task, 1)
    assert tracker.streams == {}
    _start_player(tracker)  # a new stream starts it again
    assert not tracker._task.done()
    await tracker.stop()
