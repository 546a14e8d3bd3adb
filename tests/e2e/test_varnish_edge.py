"""The Varnish edge (`configs/edge.vcl`, real `varnishd`) in front of a real server
publishing with the ffmpeg CLI, viewer statistics off: what it caches and passes,
that identical LL-HLS requests (blocking reloads, preload-hinted parts) wait on one
origin fetch, that a stream polled before it starts is not hidden, that a dead node
costs a retry, 200 low-latency viewers, and hls.js playing through it. Then the edge
in front of two cluster nodes on a real Redis, and in front of a server with viewer
statistics on.

One server, publisher and edge serve most tests (`setup`: their start-up is most of
the cost); the origin's request counters come from its /metrics, read directly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
from browser import PageServer, open_chromium
from harness import API_KEY, LiveProcess, Processes, RedisProcess, ffmpeg_publish
from llhls_viewers import HttpConnection, origin_counts, read_media_playlist, run_watch
from varnish import VarnishEdge

pytestmark = pytest.mark.e2e

VIEWERS = 200
VIEWING_S = 10
HLSJS_WATCH_S = 12


@dataclass
class Edge:
    live: LiveProcess
    edge: VarnishEdge
    playback_id: str
    playlist_path: str  # the media playlist, e.g. /live/pb_.../source/index.m3u8

    @property
    def media_dir(self) -> str:
        return self.playlist_path.rsplit("/", 1)[0]

    def origin_counts(self) -> dict[str, float]:
        """The origin's HLS answers by kind, and the parts it has made."""
        return origin_counts(self.live.get("/metrics")[1].decode())

    def backend_requests(self) -> int:
        return self.edge.counters()["MAIN.backend_req"]

    def through_edge(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        return _get(self.edge.url + path, headers)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@pytest.fixture(scope="module")
def setup():
    processes = Processes()
    try:
        data_dir = processes.scratch_dir("edge-origin-") / "data"
        live = LiveProcess(processes, data_dir, env={"LIVE_VIEWER_STATS": "false"})
        stream = live.create_livestream(reconnect_window_s=0)
        ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=120)
        media_url = live.wait_playable(stream["playback_id"])
        # Both of the VCL's nodes on the one server: requests alternate between them.
        origin = ("127.0.0.1", live.ports["HTTP"])
        edge = VarnishEdge(processes, [origin, origin])
        yield Edge(live, edge, stream["playback_id"], urllib.parse.urlsplit(media_url).path)
    finally:
        processes.end_all()


def _origin_delta(setup: Edge, before: dict[str, float]) -> dict[str, float]:
    after = setup.origin_counts()
    return {kind: after.get(kind, 0) - before.get(kind, 0) for kind in after}


def test_edge_caches_media_and_passes_the_rest(setup: Edge):
    live = setup.live
    playlist = live.get(setup.playlist_path)[1].decode()
    part_uri = read_media_playlist(playlist).parts[-1][1]
    part_path = f"{setup.media_dir}/{part_uri}"

    before = setup.origin_counts()
    status, direct, origin_headers = live.get(part_path)
    first = setup.through_edge(part_path)
    second = setup.through_edge(part_path)
    assert status == first[0] == second[0] == 200
    assert first[1] == second[1] == direct
    assert (first[2]["X-Cache"], second[2]["X-Cache"]) == ("miss", "hit")
    # the origin's caching and CORS headers reach the player unchanged
    for _, _, headers in (first, second):
        assert headers["Cache-Control"] == origin_headers["Cache-Control"]
        assert headers["Access-Control-Allow-Origin"] == "*"
    assert _origin_delta(setup, before)["part"] == 2  # direct + the edge's one fetch

    # the same part under a player's path (viewer statistics on) is the same object
    player_part = setup.through_edge(part_path.replace("/source/", "/pl_someone/source/"))
    assert (player_part[0], player_part[1], player_part[2]["X-Cache"]) == (200, direct, "hit")
    assert _origin_delta(setup, before)["part"] == 2

    # a gzip-taking player and a plain one share one copy of a playlist
    zipped = setup.through_edge(setup.playlist_path, {"Accept-Encoding": "gzip"})
    plain = setup.through_edge(setup.playlist_path)
    assert zipped[2].get("Content-Encoding") == "gzip" and "Content-Encoding" not in plain[2]
    assert plain[2]["X-Cache"] == "hit" and plain[1].startswith(b"#EXTM3U")

    # Not cached, each reaches the origin: errors (a part that does not exist yet),
    # the multivariant playlist (with viewer statistics on, it hands out player ids),
    # a player's reload without a part or for a segment's second part (how the origin
    # hears from each player behind the edge), the API, health and metrics.
    player_playlist = setup.playlist_path.replace("/source/", "/pl_someone/source/")
    uncached = [
        (f"{setup.media_dir}/part-1.m4s", 404, {}),
        (f"/live/{setup.playback_id}/index.m3u8", 200, {}),
        (player_playlist, 200, {}),
        (f"{player_playlist}?_HLS_part=1&_HLS_msn=0", 200, {}),
        ("/v1/livestreams", 200, {"X-API-Key": API_KEY}),
        ("/healthz", 200, {}),
        ("/metrics", 200, {}),
    ]
    for path, expected, headers in uncached:
        backend_before = setup.backend_requests()
        answers = [setup.through_edge(path, headers) for _ in range(2)]
        assert [a[0] for a in answers] == [expected, expected], path
        assert all(a[2]["X-Cache"] == "pass" for a in answers), (path, answers[1][2])
        assert setup.backend_requests() - backend_before == 2, path
    missing = setup.through_edge(f"{setup.media_dir}/part-1.m4s")
    assert missing[2]["Cache-Control"] == "no-cache"
    assert missing[2]["Access-Control-Allow-Origin"] == "*"


def test_a_stream_that_starts_is_not_hidden_by_an_earlier_404(setup: Edge):
    """Players poll a stream before it goes live; the edge must not keep the 404."""
    stream = setup.live.create_livestream(reconnect_window_s=0)
    multivariant = f"/live/{stream['playback_id']}/index.m3u8"
    for _ in range(2):
        status, _, headers = setup.through_edge(multivariant)
        assert (status, headers["X-Cache"]) == (404, "pass")
    processes = Processes()
    try:
        ffmpeg_publish(processes, setup.live.rtmp_url(stream["stream_key"]), seconds=30)
        setup.live.wait_playable(stream["playback_id"])  # the origin has it now
        status, body, _ = setup.through_edge(multivariant)
        assert status == 200 and body.startswith(b"#EXTM3U")  # so has the edge, at once
    finally:
        processes.end_all()


def test_a_node_that_is_down_costs_a_retry_not_an_error(setup: Edge):
    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    processes = Processes()
    try:
        origin = ("127.0.0.1", setup.live.ports["HTTP"])
        edge = VarnishEdge(processes, [("127.0.0.1", dead), origin])
        # round robin: every other fetch first goes to the dead node
        answers = [_get(edge.url + path) for path in ["/healthz", setup.playlist_path] * 2]
        assert [a[0] for a in answers] == [200] * 4
        assert edge.counters()["MAIN.backend_fail"] >= 2
    finally:
        processes.end_all()


def test_identical_blocking_reloads_and_hinted_parts_wait_on_one_fetch(setup: Edge):
    """40 players ask for the next playlist version (in either parameter order) and 40
    for the preload-hinted part, all before it exists: the origin answers each once."""
    playlist = setup.live.get(setup.playlist_path)[1].decode()
    view = read_media_playlist(playlist)
    hinted = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', playlist)[1]
    orders = itertools.cycle(
        [f"_HLS_msn={view.next_msn}&_HLS_part={view.next_part}",
         f"_HLS_part={view.next_part}&_HLS_msn={view.next_msn}"]
    )  # fmt: skip

    async def ask(path: str):
        connection = HttpConnection("127.0.0.1", setup.edge.port)
        try:
            return await connection.get(path)
        finally:
            connection.close()

    async def crowd():
        reloads = [ask(f"{setup.playlist_path}?{next(orders)}") for _ in range(40)]
        parts = [ask(f"{setup.media_dir}/{hinted}") for _ in range(40)]
        return await asyncio.wait_for(asyncio.gather(*reloads, *parts), 10)

    before = setup.origin_counts()
    answers = asyncio.run(crowd())
    delta = _origin_delta(setup, before)
    reloads, parts = answers[:40], answers[40:]
    assert all(a.status == 200 for a in answers), [a.status for a in answers]
    assert len({a.body for a in reloads}) == 1 and len({a.body for a in parts}) == 1
    assert f'URI="{hinted}"' in reloads[0].body.decode()  # released with that part
    assert (delta["playlist"], delta["part"]) == (1, 1), delta


def test_200_low_latency_viewers_through_the_edge(setup: Edge):
    before = setup.origin_counts()
    result = run_watch(
        "127.0.0.1", setup.edge.port, setup.playlist_path, viewers=VIEWERS, seconds=VIEWING_S
    )
    delta = _origin_delta(setup, before)
    summary = result.summary()
    per_part = {kind: delta[kind] / delta["parts_made"] for kind in ("playlist", "part")}
    print(
        f"{VIEWERS} viewers, {result.requests} requests to the edge; origin per part made: "
        f"{per_part}; delivery behind the first viewer: {json.dumps(summary)}"
    )
    assert not result.errors, result.errors[:10]
    assert summary["parts"] >= VIEWING_S * 2  # parts of ~200 ms, all viewers had them
    # One viewer makes one blocking reload and one part request per part; 200 through
    # the edge cost the origin no more than twice that.
    assert per_part["playlist"] <= 2 and per_part["part"] <= 2, (delta, per_part)
    # The goal is within 50 ms of the first viewer; a loaded 2-core machine running
    # the origin, the edge, the encoder and all 200 clients gets a looser bound.
    assert summary["p99_ms"] < 500, summary


def test_in_front_of_two_cluster_nodes_the_owner_answers_each_part_once(processes, tmp_path):
    """As in docker-compose.yml: two nodes sharing a real Redis, the edge sending to
    both in turn. The stream runs on node a; what the edge asks of b, b fetches from
    a. However the fetches are split, a answers each part and playlist version
    about once for all viewers."""
    redis = RedisProcess(processes)
    cluster_env = {"LIVE_VIEWER_STATS": "false"}
    shared = ("--redis", redis.url, "--storage", str(tmp_path / "recordings"))
    a = LiveProcess(processes, tmp_path / "a", *shared, env=cluster_env)
    b = LiveProcess(processes, tmp_path / "b", *shared, env=cluster_env)
    stream = b.create_livestream(reconnect_window_s=0, record=False)
    ffmpeg_publish(processes, a.rtmp_url(stream["stream_key"]), seconds=40)
    playlist_path = urllib.parse.urlsplit(b.wait_playable(stream["playback_id"])).path
    edge = VarnishEdge(processes, [("127.0.0.1", a.ports["HTTP"]), ("127.0.0.1", b.ports["HTTP"])])

    before = origin_counts(a.get("/metrics")[1].decode())
    result = run_watch("127.0.0.1", edge.port, playlist_path, viewers=VIEWERS, seconds=6)
    after = origin_counts(a.get("/metrics")[1].decode())
    counters = edge.counters()
    parts_made = after["parts_made"] - before["parts_made"]
    per_part = {
        kind: (after[kind] - before.get(kind, 0)) / parts_made for kind in ("playlist", "part")
    }
    print(f"two nodes: the owner's answers per part made {per_part}; {result.summary()}")
    assert not result.errors, result.errors[:10]
    assert result.summary()["parts"] >= 10
    assert per_part["playlist"] <= 2 and per_part["part"] <= 2, per_part
    # both nodes took fetches (b passing its share on to a)
    by_node = [v for k, v in counters.items() if re.fullmatch(r"VBE\..*\.node[12]\.req", k)]
    assert len(by_node) == 2 and min(by_node) > 0, counters


@pytest.fixture
def swarm_live(processes, tmp_path):
    """A server for a swarm of simulated players that all come from 127.0.0.1: the
    per-address limit on waiting blocking requests, meant for one client, is lifted."""
    server = LiveProcess(processes, tmp_path / "swarm", env={
        "LIVE_ENDED_PLAYLIST_LINGER_S": "30", "LIVE_HLS_MAX_BLOCKING_PER_ADDRESS": "100000",
    })  # fmt: skip
    yield server
    server.stop()


def _preload_hint(playlist: bytes) -> bytes:
    """The playlist's preload hint: which version of the live playlist it is."""
    found = re.search(rb"^#EXT-X-PRELOAD-HINT:.*$", playlist, re.M)
    assert found is not None, playlist
    return found[0]


def test_with_viewer_stats_on_players_share_the_cache_and_are_counted(swarm_live, processes):
    live = swarm_live
    """The default server (viewer statistics on) behind the edge: the multivariant
    playlist, never cached, hands every player an id of its own in its path; the edge
    leaves the id out of its cache key, so the origin still answers each part about
    once, and hears from each player about once a segment (its reload for the
    segment's second part), enough to count it, its rendition and the bytes the edge
    sent it."""
    stream = live.create_livestream(reconnect_window_s=0, record=False)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=40)
    live.wait_playable(stream["playback_id"])
    origin = ("127.0.0.1", live.ports["HTTP"])
    edge = VarnishEdge(processes, [origin, origin])
    multivariant = f"/live/{stream['playback_id']}/index.m3u8"
    ids = []
    for _ in range(3):
        status, body, headers = _get(edge.url + multivariant)
        assert status == 200 and headers["X-Cache"] == "pass"
        assert headers["Cache-Control"] == "private, no-cache"
        ids += re.findall(r"^(pl_[\w-]+)/source/index\.m3u8$", body.decode(), re.M)
    assert len(ids) == len(set(ids)) == 3, ids
    # two players, one playlist body (of the same version: a part every 200 ms may
    # come between the two fetches, then they are fetched again)
    for _ in range(20):
        bodies = [
            _get(f"{edge.url}/live/{stream['playback_id']}/{player}/source/index.m3u8")[1]
            for player in ids[:2]
        ]
        if _preload_hint(bodies[0]) == _preload_hint(bodies[1]):
            break
    assert bodies[0] == bodies[1] and b"pl_" not in bodies[0]

    viewers = 60
    before = origin_counts(live.get("/metrics")[1].decode())
    result = run_watch("127.0.0.1", edge.port, multivariant, viewers=viewers, seconds=6)
    after = origin_counts(live.get("/metrics")[1].decode())
    parts_made = after["parts_made"] - before["parts_made"]
    per_part = {
        kind: (after[kind] - before.get(kind, 0)) / parts_made for kind in ("playlist", "part")
    }
    playlist = bodies[0].decode()
    parts_per_segment = round(
        int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", playlist)[1])
        / float(re.search(r"PART-TARGET=([\d.]+)", playlist)[1])
    )
    print(f"{viewers} counted viewers: origin answers per part made {per_part}; "
          f"{result.summary()}; {result.part_bytes} bytes of parts received")  # fmt: skip
    assert not result.errors, result.errors[:10]
    assert per_part["part"] <= 2, per_part  # the player id is not in the cache key
    # one shared reload per part, plus each player's counted one per segment
    assert per_part["playlist"] <= 2 + 1.5 * viewers / parts_per_segment, per_part

    report = live.api("GET", f"/v1/livestreams/{stream['id']}/players")[1]
    watching = [p for p in report["players"] if p["id"] not in ids]
    assert len(watching) == viewers, report["current_viewers"]
    assert report["current_viewers"] == viewers  # the probes above fetched no media
    assert all(p["id"].startswith("pl_") and p["rendition"] == "source" for p in watching)
    assert all(p["bytes_out"] > 0 for p in watching)
    assert set(report["renditions"]) == {"source"}
    # the edge sent the media; the origin credits each player a segment per segment
    counted = sum(p["bytes_out"] for p in watching)
    print(f"bytes_out on the players route: {counted}")
    assert 0.5 * result.part_bytes <= counted <= 2 * result.part_bytes, (
        counted,
        result.part_bytes,
    )


@pytest.fixture
def page_server():
    server = PageServer()
    yield server
    server.close()


def test_hlsjs_plays_through_the_edge(setup: Edge, page_server, tmp_path):
    processes = Processes()  # the browser ends with this test, the edge goes on
    try:
        requests_before = setup.edge.counters()["MAIN.client_req"]
        src = f"{setup.edge.url}/live/{setup.playback_id}/index.m3u8"
        open_chromium(processes, page_server.player_url(src, HLSJS_WATCH_S), tmp_path / "profile")
        report = page_server.wait_report(HLSJS_WATCH_S + 30)
    finally:
        processes.end_all()

    assert not [e for e in report["errors"] if e["fatal"]], report["errors"]
    assert report["playingAt"] is not None, report
    playing = [s for s in report["samples"] if s["t"] >= report["playingAt"]]
    assert playing[-1]["currentTime"] - playing[0]["currentTime"] >= 0.8 * (
        playing[-1]["t"] - playing[0]["t"]
    ), playing
    assert report["stalls"] == 0, (report["errors"], report["samples"][:12])
    settled = [s for s in playing if s["t"] >= report["playingAt"] + 2 and s["latency"]]
    assert settled and max(s["latency"] for s in settled) < 2.5, settled
    # every request the player made went through the edge (a part or two a second)
    assert setup.edge.counters()["MAIN.client_req"] - requests_before >= 2 * HLSJS_WATCH_S
