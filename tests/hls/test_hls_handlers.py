"""The /live HTTP surface: blocking reload, parts, errors, headers, query propagation.

Every test runs twice: through aiohttp's router, and answered before it
(the front of the port, `front.py`), as `live serve` does for streams live on the node."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import hls_testing
import pytest
from aiohttp import web
from hls_testing import (
    PB,
    FakeClock,
    add_parts,
    feed,
    make_stream,
    make_window,
    parse,
    part_bytes,
    serve,
)
from waiting import eventually

import live.hls.handlers as handlers
from live.hls import HlsLimits, HlsRegistry, HlsStream, HlsWindow, Rendition, setup_hls_routes
from live.hls.paths import LiveTarget
from live.hls.spool import HlsSpool
from live.hops import TrustedHops, parse_networks
from live.limits import LimitHits

MEDIA = f"/live/{PB}/source"
PLAYLIST = f"{MEDIA}/index.m3u8"


@pytest.fixture(autouse=True, params=["routed", "front"])
def serving_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(hls_testing.SERVE_FRONT, "on", request.param == "front")
    return request.param


@pytest.fixture
def fast_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold blocked requests 0.3 x TD instead of 3 x TD so timeouts are quick to test."""
    monkeypatch.setattr(handlers, "HOLD_TARGET_DURATIONS", 0.3)


def live_setup(**stream_kw: Any) -> tuple[HlsRegistry, HlsWindow]:
    window = make_window(td=1)
    feed(window, 2)
    window.start_segment()
    add_parts(window, 2)  # segments 0, 1 closed; segment 2 has parts 0, 1; next part 12
    registry = HlsRegistry()
    registry.register(make_stream(window, **stream_kw))
    return registry, window


async def wait_until(predicate: Any, timeout: float = 2.0) -> None:
    await eventually(predicate, timeout, interval=0.005)


def assert_cors(resp: Any) -> None:
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Access-Control-Expose-Headers"] == "Age"


# ---------------------------------------------------------------------- playlists


async def test_media_playlist_headers_and_body() -> None:
    registry, _window = live_setup()
    async with serve(registry) as client:
        resp = await client.get(PLAYLIST)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert resp.headers["Cache-Control"] == "max-age=1"
        assert resp.headers["Content-Encoding"] == "gzip"
        assert "Age" not in resp.headers
        assert_cors(resp)
        pl = parse(await resp.text())
        assert pl.preload_hint.uri == "part-12.m4s"

        plain = await client.get(PLAYLIST, headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers
        assert await plain.text() == await resp.text()


async def test_non_blocking_max_age_is_half_a_target_duration() -> None:
    window = make_window(td=4)
    feed(window, 1)
    registry = HlsRegistry()
    registry.register(make_stream(window))
    async with serve(registry) as client:
        resp = await client.get(PLAYLIST)
        assert resp.headers["Cache-Control"] == "max-age=2"


async def test_blocking_reload_is_answered_when_the_part_arrives() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=2&_HLS_part=2"))
        await wait_until(lambda: window.waiter_count == 1)
        await asyncio.sleep(0.05)
        assert not task.done()
        added = time.monotonic()
        add_parts(window, 1)
        resp = await asyncio.wait_for(task, 1)
        body = await resp.text()
        assert time.monotonic() - added < 0.1
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "max-age=6"
        assert parse(body).segments[-1].parts[-1].uri == "part-12.m4s"
        assert window.waiter_count == 0


async def test_part_index_past_a_closed_segment_waits_for_the_next_segment() -> None:
    registry, window = live_setup()
    add_parts(window, 3)
    window.start_segment()  # segment 2 closed with 5 parts; segment 3 empty
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=2&_HLS_part=5"))
        await wait_until(lambda: window.waiter_count == 1)
        assert not task.done()
        add_parts(window, 1)
        resp = await asyncio.wait_for(task, 1)
        assert resp.status == 200
        assert parse(await resp.text()).segments[-1].parts[0].uri == "part-15.m4s"


async def test_msn_only_waits_for_the_segment_to_complete() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=2"))
        await wait_until(lambda: window.waiter_count == 1)
        add_parts(window, 1)
        await asyncio.sleep(0.05)
        assert not task.done()
        window.start_segment()
        resp = await asyncio.wait_for(task, 1)
        assert "seg-2.m4s" in await resp.text()


async def test_many_waiters_share_one_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, window = live_setup()
    calls = 0
    real = handlers.render_media_playlist

    def counting(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers, "render_media_playlist", counting)
    async with serve(registry) as client:
        url = f"{PLAYLIST}?_HLS_msn=2&_HLS_part=2"
        tasks = [asyncio.create_task(client.get(url)) for _ in range(8)]
        await wait_until(lambda: window.waiter_count == 8)
        add_parts(window, 1)
        responses = await asyncio.wait_for(asyncio.gather(*tasks), 2)
        bodies = {await r.read() for r in responses}
        assert len(bodies) == 1 and calls == 1


async def test_old_msn_is_answered_at_once_with_the_full_playlist() -> None:
    registry, _window = live_setup()
    async with serve(registry) as client:
        for query in ("_HLS_msn=0", "_HLS_msn=0&_HLS_part=3", "_HLS_msn=1&_HLS_part=99"):
            resp = await asyncio.wait_for(client.get(f"{PLAYLIST}?{query}"), 0.5)
            assert resp.status == 200
            pl = parse(await resp.text())
            assert [s.uri for s in pl.segments][:2] == ["seg-0.m4s", "seg-1.m4s"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("_HLS_part=1", "_HLS_part"),  # part without msn
        ("_HLS_msn=5", "_HLS_msn"),  # last msn is 2: more than 2 ahead
        ("_HLS_msn=2&_HLS_part=17", "_HLS_part"),  # newest is part 1; limit 15
        ("_HLS_msn=3&_HLS_part=16", "_HLS_part"),
        ("_HLS_msn=abc", "_HLS_msn"),
        ("_HLS_msn=2&_HLS_part=1.5", "_HLS_part"),
        ("_HLS_msn=-1", "_HLS_msn"),
        ("_HLS_skip=maybe", "_HLS_skip"),
    ],
)
async def test_bad_directives_get_400(query: str, param: str) -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        resp = await asyncio.wait_for(client.get(f"{PLAYLIST}?{query}"), 0.5)
        assert resp.status == 400
        assert resp.headers["Cache-Control"] == "max-age=1"
        assert_cors(resp)
        error = (await resp.json())["error"]
        assert error["code"] == "invalid_parameter_value" and error["param"] == param


async def test_held_too_long_gets_503(fast_hold: None) -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        started = time.monotonic()
        resp = await client.get(f"{PLAYLIST}?_HLS_msn=3&_HLS_part=0")
        assert 0.25 < time.monotonic() - started < 1.0
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert resp.headers["Cache-Control"] == "max-age=1"
        assert_cors(resp)
        assert window.waiter_count == 0


async def test_endlist_makes_every_directive_ignored() -> None:
    registry, window = live_setup()
    window.end()
    async with serve(registry) as client:
        for query in ("_HLS_msn=99&_HLS_part=0", "_HLS_part=x", "_HLS_msn=3&_HLS_skip=YES"):
            resp = await asyncio.wait_for(client.get(f"{PLAYLIST}?{query}"), 0.5)
            assert resp.status == 200
            text = await resp.text()
            assert text.rstrip().endswith("#EXT-X-ENDLIST") and "EXT-X-SKIP" not in text
            assert resp.headers["Cache-Control"] == "max-age=1"


async def test_blocked_request_answers_when_the_stream_ends() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=3&_HLS_part=0"))
        await wait_until(lambda: window.waiter_count == 1)
        window.end()
        resp = await asyncio.wait_for(task, 1)
        assert resp.status == 200
        text = await resp.text()
        assert "#EXT-X-ENDLIST" in text and "PRELOAD-HINT" not in text


async def test_delta_update_over_http() -> None:
    window = make_window(td=1, window_segments=20)
    feed(window, 20)
    window.start_segment()
    add_parts(window, 1)
    registry = HlsRegistry()
    registry.register(make_stream(window))
    async with serve(registry) as client:
        resp = await client.get(f"/live/{PB}/pl_7/source/index.m3u8?_HLS_skip=YES")
        pl = parse(await resp.text())
        assert pl.skip.skipped_segments == 14
        assert pl.media_sequence == 0
        assert pl.segments[0].uri == "seg-14.m4s"


async def test_first_playlist_waits_for_the_first_part() -> None:
    window = make_window(td=1)
    registry = HlsRegistry()
    registry.register(make_stream(window))
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(PLAYLIST))
        await wait_until(lambda: window.waiter_count == 1)
        add_parts(window, 1)
        resp = await asyncio.wait_for(task, 1)
        assert resp.status == 200
        assert parse(await resp.text()).preload_hint.uri == "part-1.m4s"


async def test_first_playlist_503_when_nothing_arrives(fast_hold: None) -> None:
    window = make_window(td=1)
    registry = HlsRegistry()
    registry.register(make_stream(window))
    async with serve(registry) as client:
        resp = await client.get(PLAYLIST)
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        window.end()
        resp = await client.get(PLAYLIST)
        assert resp.status == 404


# ---------------------------------------------------------------------- media files


async def test_parts_segments_and_inits_are_served_whole_and_immutable() -> None:
    registry, _window = live_setup()
    async with serve(registry) as client:
        resp = await client.get(f"{MEDIA}/part-11.m4s")
        assert resp.status == 200 and await resp.read() == part_bytes(11)
        assert resp.headers["Content-Type"] == "video/mp4"
        assert "max-age=3600" in resp.headers["Cache-Control"]
        assert "Content-Encoding" not in resp.headers
        assert_cors(resp)
        resp = await client.get(f"{MEDIA}/part-2.m4s")  # part of a closed segment
        assert await resp.read() == part_bytes(2)
        resp = await client.get(f"{MEDIA}/seg-1.m4s")
        assert await resp.read() == b"".join(part_bytes(i) for i in range(5, 10))
        assert "max-age=3600" in resp.headers["Cache-Control"]
        resp = await client.get(f"{MEDIA}/init-0.mp4")
        assert await resp.read() == b"ftyp-moov-0"
        assert resp.headers["Content-Type"] == "video/mp4"
        for missing in (
            "seg-2.m4s",
            "seg-9.m4s",
            "init-1.mp4",
            "part-99.m4s",
            "part-13.m4s",
            "part-123456789012345678901234.m4s",
        ):
            resp = await asyncio.wait_for(client.get(f"{MEDIA}/{missing}"), 0.5)
            assert resp.status == 404, missing
            assert resp.headers["Cache-Control"] == "no-cache"
            assert_cors(resp)


async def test_audio_only_media_type() -> None:
    window = make_window()
    feed(window, 1)
    registry = HlsRegistry()
    registry.register(
        HlsStream(
            PB,
            [Rendition("audio", window, 128_000, None, "mp4a.40.2", None, None, audio_only=True)],
        )
    )
    async with serve(registry) as client:
        resp = await client.get(f"/live/{PB}/audio/part-0.m4s")
        assert resp.headers["Content-Type"] == "audio/mp4"


async def test_hinted_part_is_held_then_sent_whole() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{MEDIA}/part-12.m4s"))
        await wait_until(lambda: window.waiter_count == 1)
        await asyncio.sleep(0.05)
        assert not task.done()
        window.start_segment()  # the hinted part opens a new segment: same URI
        window.add_part(b"X" * 100_000, 0.2, True)
        resp = await asyncio.wait_for(task, 1)
        assert resp.status == 200
        assert resp.headers["Content-Length"] == "100000"
        assert await resp.read() == b"X" * 100_000


async def test_hinted_part_404_when_the_stream_ends() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{MEDIA}/part-12.m4s"))
        await wait_until(lambda: window.waiter_count == 1)
        window.end()
        resp = await asyncio.wait_for(task, 1)
        assert resp.status == 404 and resp.headers["Cache-Control"] == "no-cache"


async def test_hinted_part_503_when_it_never_comes(fast_hold: None) -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        resp = await client.get(f"{MEDIA}/part-12.m4s")
        assert resp.status == 503
        assert window.waiter_count == 0


async def test_segment_that_left_the_playlist_is_served_from_the_spool(tmp_path: Path) -> None:
    """A segment kept on disk once it left the playlist is sent byte for byte as it
    would have been from memory, until it expires."""
    spill = HlsSpool.open(tmp_path).spill()
    window = HlsWindow(target_duration=1, part_target=0.2, clock=FakeClock(), spill=spill)
    in_memory = make_window()
    for w in (window, in_memory):
        w.set_init(b"ftyp-moov-0")
        for msn in range(12):
            w.start_segment()
            for i in range(5):  # parts of different sizes and contents
                w.add_part(bytes([msn, i]) * (1000 * (i + 1) + msn), 0.2, i == 0)
        w.start_segment()
    registry = HlsRegistry()
    registry.register(make_stream(window))
    async with serve(registry) as client:
        listed = [s.uri for s in parse(await (await client.get(PLAYLIST)).text()).segments]
        assert listed[0] == "seg-5.m4s" and window.is_spilled(4)
        for msn in range(12):
            assert window.is_spilled(msn) == (msn < 5)
            expected = in_memory.segment_data(msn)
            assert expected is not None
            resp = await client.get(f"{MEDIA}/seg-{msn}.m4s")
            assert resp.status == 200
            assert resp.headers["Content-Length"] == str(len(expected))
            assert "max-age=3600" in resp.headers["Cache-Control"]
            assert await resp.read() == expected
        resp = await client.head(f"{MEDIA}/seg-0.m4s")
        assert resp.headers["Content-Length"] == str(len(in_memory.segment_data(0) or b""))
        feed(window, 8)  # segment 0 expires: its file goes, and it is 404
        assert not (spill.directory / "0.m4s").exists()
        assert (await client.get(f"{MEDIA}/seg-0.m4s")).status == 404


async def test_part_files_404_once_freed() -> None:
    registry, window = live_setup()
    feed(window, 8)
    async with serve(registry) as client:
        assert (await client.get(f"{MEDIA}/part-0.m4s")).status == 404
        assert (await client.get(f"{MEDIA}/seg-0.m4s")).status == 200


# ---------------------------------------------------------------------- lookup, CORS


async def test_unknown_stream_or_rendition_is_404_json() -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        for path in (
            "/live/nope/index.m3u8",
            "/live/nope/source/index.m3u8",
            f"/live/{PB}/1080p/index.m3u8",
            f"/live/{PB}/1080p/part-0.m4s",
            "/live/nope/source/init-0.mp4",
            f"{MEDIA}/whatever.txt",
            f"/live/{PB}",
        ):
            resp = await client.get(path)
            assert resp.status == 404, path
            assert_cors(resp)
            assert json.loads(await resp.text())["error"]["code"] == "not_found"


async def test_other_methods_get_405_with_cors() -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        for path in (PLAYLIST, f"{MEDIA}/part-0.m4s", "/live/x"):
            resp = await client.post(path, data=b"x")
            assert resp.status == 405, path
            assert_cors(resp)
            assert "GET" in resp.headers["Allow"]


async def test_options_preflight() -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        resp = await client.options(
            PLAYLIST,
            headers={
                "Origin": "https://example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range",
            },
        )
        assert resp.status == 204
        assert_cors(resp)
        assert "GET" in resp.headers["Access-Control-Allow-Methods"]
        assert resp.headers["Access-Control-Allow-Headers"] == "range"


async def test_head_requests() -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        resp = await client.head(f"{MEDIA}/seg-0.m4s")
        seg0 = b"".join(part_bytes(i) for i in range(5))
        assert resp.status == 200 and resp.headers["Content-Length"] == str(len(seg0))
        assert await resp.read() == b""


# ---------------------------------------------------------------------- multivariant


async def test_multivariant_playlist() -> None:
    registry, _ = live_setup(extra=("480p",))
    async with serve(registry) as client:
        resp = await client.get(f"/live/{PB}/index.m3u8?token=abc&_HLS_msn=3")
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert_cors(resp)
        # the same for every viewer: an edge may share it for a second, players may not
        assert resp.headers["Cache-Control"] == "max-age=0, s-maxage=1"
        pl = parse(await resp.text())
        assert [p.uri for p in pl.playlists] == [
            "source/index.m3u8?token=abc",
            "480p/index.m3u8?token=abc",
        ]
        assert pl.playlists[0].stream_info.resolution == (1280, 720)
        assert pl.playlists[0].stream_info.average_bandwidth == 2_500_000


async def test_multivariant_puts_the_player_id_in_the_path() -> None:
    registry, _ = live_setup(extra=("480p",))
    started: list[str] = []

    def start_player(request: web.BaseRequest, playback_id: str) -> str:
        started.append(playback_id)
        return f"pl_{len(started)}"

    async with serve(registry, start_player=start_player) as client:
        resp = await client.get(f"/live/{PB}/index.m3u8?token=t")
        pl = parse(await resp.text())
        assert [p.uri for p in pl.playlists] == [
            "pl_1/source/index.m3u8?token=t",
            "pl_1/480p/index.m3u8?token=t",
        ]
        # it hands this viewer its own id: no shared cache may pass it on
        assert resp.headers["Cache-Control"] == "private, no-cache"
        again = parse(await (await client.get(f"/live/{PB}/index.m3u8")).text())
        assert again.playlists[0].uri == "pl_2/source/index.m3u8"
        # a HEAD (the player page asks whether the stream is live) starts no player
        assert (await client.head(f"/live/{PB}/index.m3u8")).status == 200
        assert started == [PB, PB]


async def test_multivariant_without_renditions_is_503() -> None:
    registry = HlsRegistry()
    registry.register(HlsStream(PB))
    async with serve(registry) as client:
        resp = await client.get(f"/live/{PB}/index.m3u8")
        assert resp.status == 503 and "Retry-After" in resp.headers


async def test_rendition_reports_name_the_other_renditions() -> None:
    registry, _ = live_setup(extra=("480p",))
    stream = registry.get(PB)
    assert stream is not None
    other = stream.rendition("480p")
    assert other is not None
    feed(other.window, 2)
    async with serve(registry) as client:
        pl = parse(await (await client.get(f"/live/{PB}/pl_q/source/index.m3u8")).text())
        got = [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports]
        assert got == [("../480p/index.m3u8", 1, 4)]
        pl = parse(await (await client.get(f"/live/{PB}/480p/index.m3u8")).text())
        assert [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports] == [
            ("../source/index.m3u8", 2, 1)
        ]


async def test_single_rendition_has_no_reports() -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        assert "RENDITION-REPORT" not in await (await client.get(PLAYLIST)).text()


# ---------------------------------------------------------------------- query, hooks


async def test_query_is_propagated_and_hls_params_stripped() -> None:
    registry, window = live_setup()
    window.set_init(b"init-1")
    async with serve(registry) as client:
        resp = await client.get(f"{PLAYLIST}?_HLS_msn=2&tok=abc&_HLS_part=0&x=a%20b%26c")
        text = await resp.text()
        assert "_HLS_" not in text
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        uris = [u.split('URI="')[1].split('"')[0] for u in text.splitlines() if 'URI="' in u]
        assert len(lines + uris) > 8
        assert all(u.endswith("?tok=abc&x=a%20b%26c") for u in lines + uris)


async def test_players_get_one_shared_playlist_rendered_and_gzipped_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The player id is in the path: every player's playlist is the same body."""
    registry, _window = live_setup(extra=("480p",))
    other = registry.get(PB).rendition("480p")  # type: ignore[union-attr]
    assert other is not None
    feed(other.window, 1)
    calls = {"render": 0, "gzip": 0}
    for name in ("render_media_playlist", "gzip_bytes"):
        real = getattr(handlers, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name.split("_")[0]] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(handlers, name, counting)
    async with serve(registry) as client:
        gzipped, plain = set(), set()
        for player in ("pl_aaaaaaaaaaaa", "pl_bbbbbbbbbbbb", "pl_aaaaaaaaaaaa"):
            resp = await client.get(f"/live/{PB}/{player}/source/index.m3u8")
            assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
            gzipped.add(await resp.read())
            resp = await client.get(
                f"/live/{PB}/{player}/source/index.m3u8", headers={"Accept-Encoding": "identity"}
            )
            plain.add(await resp.text())
        without_id = await (await client.get(PLAYLIST)).text()
        assert len(gzipped) == 1 and plain == {without_id}
        assert "pl_" not in without_id
        assert calls == {"render": 1, "gzip": 1}
        # parts, segments, inits and the other rendition resolve under the player's path
        for uri in ("part-11.m4s", "seg-1.m4s", "init-0.mp4", "../480p/index.m3u8"):
            resp = await client.get(f"/live/{PB}/pl_aaaaaaaaaaaa/source/{uri}")
            assert resp.status == 200, uri


async def test_malformed_player_segments_are_404() -> None:
    registry, _ = live_setup()
    async with serve(registry) as client:
        for path in (
            f"/live/{PB}/nobody/source/index.m3u8",  # not a player id
            f"/live/{PB}/pl_/source/part-11.m4s",
            f"/live/{PB}/pl_{'x' * 41}/source/part-11.m4s",
            f"/live/{PB}/pl_a/b/source/part-11.m4s",
            f"/live/{PB}/pl_a/source/",
        ):
            resp = await client.get(path)
            assert resp.status == 404, path
            assert_cors(resp)


async def test_on_request_hook_sees_successful_responses() -> None:
    registry, _ = live_setup()
    seen: list[tuple[str, str, str | None, str | None, int]] = []

    def hook(request: web.BaseRequest, target: LiveTarget, sent: int) -> None:
        seen.append((target.playback_id, target.kind, target.player_id, target.rendition, sent))
        if target.kind == "init":
            raise RuntimeError("a broken hook must not break playback")

    async with serve(registry, on_request=hook) as client:
        hdr = {"Accept-Encoding": "identity"}
        mv = await client.get(f"/live/{PB}/index.m3u8", headers=hdr)
        pl = await client.get(PLAYLIST, headers=hdr)
        await client.get(f"/live/{PB}/pl_me/source/part-0.m4s")
        await client.get(f"{MEDIA}/seg-0.m4s")
        init = await client.get(f"{MEDIA}/init-0.mp4")
        assert init.status == 200
        await client.get(f"{MEDIA}/part-99.m4s")  # 404: not reported
        assert seen == [
            (PB, "multivariant", None, None, len(await mv.read())),
            (PB, "playlist", None, "source", len(await pl.read())),
            (PB, "part", "pl_me", "source", len(part_bytes(0))),
            (PB, "segment", None, "source", sum(len(part_bytes(i)) for i in range(5))),
            (PB, "init", None, "source", len(b"ftyp-moov-0")),
        ]


# ---------------------------------------------------------------------- disconnects


async def test_client_disconnect_removes_the_waiter() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=2&_HLS_part=2"))
        hint = asyncio.create_task(client.get(f"{MEDIA}/part-12.m4s"))
        await wait_until(lambda: window.waiter_count == 2)
        task.cancel()
        hint.cancel()
        await asyncio.gather(task, hint, return_exceptions=True)
        await wait_until(lambda: window.waiter_count == 0)


async def test_disconnect_without_handler_cancellation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runners that keep handlers running after a disconnect still drop the waiter."""
    monkeypatch.setattr(handlers, "DISCONNECT_POLL_S", 0.05)
    registry, window = live_setup()
    app = web.Application()
    setup_hls_routes(app, registry)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {PLAYLIST}?_HLS_msn=2&_HLS_part=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        await wait_until(lambda: window.waiter_count == 1)
        writer.close()
        await writer.wait_closed()
        await wait_until(lambda: window.waiter_count == 0, timeout=1.0)
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- standard mode


async def test_standard_mode_is_plain_hls_and_ignores_directives() -> None:
    registry, _window = live_setup(latency_mode="standard")
    async with serve(registry) as client:
        resp = await asyncio.wait_for(client.get(f"{PLAYLIST}?_HLS_msn=40&_HLS_part=x"), 0.5)
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "max-age=1"
        text = await resp.text()
        pl = parse(text)
        assert pl.version == 6
        assert "EXT-X-PART" not in text and "PRELOAD-HINT" not in text
        assert "CAN-BLOCK-RELOAD" not in text
        assert [s.uri for s in pl.segments] == ["seg-0.m4s", "seg-1.m4s"]


async def test_standard_mode_first_playlist_waits_for_a_whole_segment() -> None:
    window = make_window()
    registry = HlsRegistry()
    registry.register(make_stream(window, latency_mode="standard"))
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(PLAYLIST))
        await wait_until(lambda: window.waiter_count == 1)
        add_parts(window, 3)
        await asyncio.sleep(0.05)
        assert not task.done()
        window.start_segment()
        resp = await asyncio.wait_for(task, 1)
        assert [s.uri for s in parse(await resp.text()).segments] == ["seg-0.m4s"]


async def test_unregister_releases_blocked_viewers() -> None:
    registry, window = live_setup()
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=3&_HLS_part=0"))
        await wait_until(lambda: window.waiter_count == 1)
        registry.unregister(PB)
        resp = await asyncio.wait_for(task, 1)
        assert resp.status == 200 and window.ended
        assert (await client.get(PLAYLIST)).status == 404


async def test_first_number_window_over_http() -> None:
    window = HlsWindow(target_duration=1, clock=FakeClock(), first_number=7000)
    window.set_init(b"init")
    registry = HlsRegistry()
    registry.register(make_stream(window))
    async with serve(registry) as client:
        task = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=7000&_HLS_part=0"))
        plain = asyncio.create_task(client.get(PLAYLIST))
        old = asyncio.create_task(client.get(f"{PLAYLIST}?_HLS_msn=5"))  # "old", yet no media
        await wait_until(lambda: window.waiter_count == 3)
        add_parts(window, 1)
        for resp in await asyncio.wait_for(asyncio.gather(task, plain, old), 1):
            assert resp.status == 200
            pl = parse(await resp.text())
            assert pl.media_sequence == 7000
            assert pl.segments[0].parts[0].uri == "part-7000.m4s"
        assert (await client.get(f"{MEDIA}/init-7000.mp4")).status == 200


# ---------------------------------------------------------------------- limits


async def test_a_client_cannot_name_its_own_address_to_wait_more() -> None:
    """The per-address cap counts a client that is not a trusted hop by its peer
    address, whatever hop headers it sends."""
    registry, window = live_setup()
    hops = TrustedHops(parse_networks("192.0.2.1"))  # an edge elsewhere; not us
    limits = HlsLimits(max_blocking_per_address=1, client_address=hops.client_address)
    async with serve(registry, limits=limits) as client:
        blocking = f"{PLAYLIST}?_HLS_msn=2&_HLS_part=2"
        held = asyncio.create_task(client.get(blocking))
        await wait_until(lambda: window.waiter_count == 1)
        for n in range(3):
            spoofed = {"X-Live-Edge": "count", "X-Forwarded-For": f"198.51.100.{n}"}
            assert (await client.get(blocking, headers=spoofed)).status == 429
            forwarded = {"X-Live-Forwarded": "1", "X-Forwarded-For": f"203.0.113.{n}"}
            assert (await client.get(blocking, headers=forwarded)).status == 429
        add_parts(window, 1)
        assert (await held).status == 200


async def test_blocking_requests_over_the_per_address_limit_get_429() -> None:
    registry, window = live_setup()
    hits = LimitHits()
    limits = HlsLimits(
        max_blocking_per_address=2,
        client_address=lambda request: request.headers.get("X-Test-Client", ""),
        hits=hits,
    )
    async with serve(registry, limits=limits) as client:
        blocking = f"{PLAYLIST}?_HLS_msn=2&_HLS_part=2"
        held = [
            asyncio.create_task(client.get(blocking, headers={"X-Test-Client": "a"}))
            for _ in range(2)
        ]
        await wait_until(lambda: window.waiter_count == 2)
        refused = await client.get(blocking, headers={"X-Test-Client": "a"})
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "1"
        assert_cors(refused)
        assert (await refused.json())["error"]["code"] == "rate_limited"
        hinted = await client.get(f"{MEDIA}/part-12.m4s", headers={"X-Test-Client": "a"})
        assert hinted.status == 429  # a held preload hint counts the same
        assert hits.counts["hls_max_blocking_per_address"] == 2
        # what needs no wait is served, and another address may still wait
        assert (await client.get(PLAYLIST, headers={"X-Test-Client": "a"})).status == 200
        other = asyncio.create_task(client.get(blocking, headers={"X-Test-Client": "b"}))
        await wait_until(lambda: window.waiter_count == 3)
        add_parts(window, 1)
        for response in await asyncio.gather(*held, other):
            assert response.status == 200
        # once answered, the address may wait again
        again = asyncio.create_task(
            client.get(f"{PLAYLIST}?_HLS_msn=2&_HLS_part=3", headers={"X-Test-Client": "a"})
        )
        await wait_until(lambda: window.waiter_count == 1)
        add_parts(window, 1)
        assert (await again).status == 200
