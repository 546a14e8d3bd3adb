"""The load tool's HTTP parser and playlist logic (`bench/llhls_client.py`).

Playlists come from the server's own renderer, so a change in what the server writes
that the tool would misread shows up here, not as a quiet bad benchmark.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from llhls_client import (
    ProtocolError,
    ResponseParser,
    parse_media_playlist,
    part_name,
    parts_to_fetch,
    resolve,
    variant_uris,
    with_directives,
)

from live.hls import HlsWindow
from live.hls.playlist import render_media_playlist

# ---------------------------------------------------------------------------- HTTP


def feed_in_pieces(raw: bytes, cut: int, *, keep_body: bool = True) -> list:
    """Feed `raw` as the socket might deliver it: in pieces of `cut` bytes."""
    parser = ResponseParser()
    parser.expect(keep_body=keep_body)
    responses = []
    for start in range(0, len(raw), cut):
        responses += parser.feed(raw[start : start + cut])
    return responses


CONTENT_LENGTH = (
    b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 11\r\n\r\nhello world"
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
)


@pytest.mark.parametrize("raw", [CONTENT_LENGTH, CHUNKED], ids=["content-length", "chunked"])
def test_a_body_is_whole_however_the_bytes_are_cut(raw: bytes) -> None:
    for cut in range(1, len(raw) + 1):
        responses = feed_in_pieces(raw, cut)
        assert [(r.status, r.body, r.size) for r in responses] == [(200, b"hello world", 11)], cut


def test_media_bodies_are_counted_not_kept() -> None:
    (response,) = feed_in_pieces(CHUNKED, 7, keep_body=False)
    assert response.body is None and response.size == 11


def test_back_to_back_responses_and_an_interim_one() -> None:
    parser = ResponseParser()
    parser.expect(keep_body=True)
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        + CONTENT_LENGTH
        + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        + b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    responses = parser.feed(raw)
    assert [(r.status, r.body) for r in responses] == [
        (200, b"hello world"),
        (404, b""),
        (204, b""),
    ]
    assert parser.idle


def test_gzip_and_connection_close_are_seen() -> None:
    body = gzip.compress(b"#EXTM3U\n")
    raw = (
        b"HTTP/1.1 200 OK\r\nCONTENT-ENCODING: gzip\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    (response,) = ResponseParser().feed(raw)
    assert response.gzip and response.close and response.text() == "#EXTM3U\n"


def test_a_body_without_length_ends_with_the_connection() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\npart one, ") == []
    assert parser.feed(b"part two") == []
    response = parser.feed_eof()
    assert response is not None and response.body == b"part one, part two" and response.close


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000,
    ],
    ids=["not-http", "bad-chunk-size", "chunk-longer-than-said", "endless-head"],
)
def test_garbage_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(raw)


# ---------------------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    ("base", "uri", "expected"),
    [
        ("/live/pb/source/index.m3u8", "part-7.m4s", "/live/pb/source/part-7.m4s"),
        (
            "/live/pb/source/index.m3u8?pl=abc",
            "part-7.m4s?pl=abc",
            "/live/pb/source/part-7.m4s?pl=abc",
        ),
        (
            "/live/pb/index.m3u8",
            "p/abc123/source/index.m3u8",
            "/live/pb/p/abc123/source/index.m3u8",
        ),
        ("/live/pb/source/index.m3u8", "../720p/index.m3u8", "/live/pb/720p/index.m3u8"),
        ("/live/pb/source/index.m3u8", "/other/part-1.m4s", "/other/part-1.m4s"),
        ("/live/pb/source/index.m3u8", "?x=1", "/live/pb/source/index.m3u8?x=1"),
        ("/live/pb/index.m3u8", "http://cdn.example/a/b.m3u8?q", "/a/b.m3u8?q"),
    ],
)
def test_uris_are_resolved_against_the_playlist_url(base: str, uri: str, expected: str) -> None:
    assert resolve(base, uri) == expected


def test_directives_join_an_existing_query() -> None:
    assert (
        with_directives("/a/index.m3u8", 5, 2, skip=False) == "/a/index.m3u8?_HLS_msn=5&_HLS_part=2"
    )
    assert with_directives("/a/index.m3u8?pl=x", 5, 0, skip=True) == (
        "/a/index.m3u8?pl=x&_HLS_msn=5&_HLS_part=0&_HLS_skip=YES"
    )


def test_variants_in_order() -> None:
    text = (
        "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS="avc1.64001f"\nsource/index.m3u8?pl=1\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=800000\n480p/index.m3u8?pl=1\n"
    )
    assert variant_uris(text) == ["source/index.m3u8?pl=1", "480p/index.m3u8?pl=1"]


def test_a_part_is_known_by_its_file_name_whatever_comes_before() -> None:
    assert part_name("part-42.m4s") == "part-42.m4s"
    assert part_name("p/viewer-1/part-42.m4s?x=y") == part_name("part-42.m4s?pl=viewer-2")


# ---------------------------------------------------------------------------- playlists


def window_with(segments: int, open_parts: int) -> HlsWindow:
    """A server window: `segments` closed 1 s segments of five 0.2 s parts, then an open
    segment holding `open_parts` parts."""
    window = HlsWindow(target_duration=1, part_target=0.2, window_segments=7)
    window.set_init(b"ftyp-moov")
    for _ in range(segments):
        window.start_segment()
        for index in range(5):
            window.add_part(b"moof-mdat", 0.2, index == 0)
    window.start_segment()
    for index in range(open_parts):
        window.add_part(b"moof-mdat", 0.2, index == 0)
    return window


def test_next_part_and_hint_follow_the_server() -> None:
    window = window_with(segments=3, open_parts=2)
    playlist = parse_media_playlist(render_media_playlist(window.snapshot()))
    # Segments 0-2 closed, segment 3 open with parts 0 and 1: part 2 of segment 3 is next.
    assert playlist.next_part == (3, 2)
    assert playlist.hint == f"part-{window.next_part}.m4s"
    assert playlist.init_uri is not None and playlist.init_uri.startswith("init-")
    assert playlist.can_block and playlist.can_skip and not playlist.ended
    assert part_name(playlist.parts[-1]) == f"part-{window.next_part - 1}.m4s"


def test_next_part_after_a_segment_closes() -> None:
    window = window_with(segments=2, open_parts=0)
    playlist = parse_media_playlist(render_media_playlist(window.snapshot()))
    assert playlist.next_part == (2, 0)
    assert playlist.hint == f"part-{window.next_part}.m4s"


def test_a_delta_update_reads_like_the_full_playlist() -> None:
    window = window_with(segments=20, open_parts=2)
    full = parse_media_playlist(render_media_playlist(window.snapshot()))
    delta = parse_media_playlist(render_media_playlist(window.snapshot(), skip=True))
    assert delta.skipped > 0 and full.skipped == 0
    assert delta.next_part == full.next_part == (20, 2)
    assert delta.hint == full.hint
    assert delta.parts == full.parts  # part tags are listed only near the live edge


def test_endlist_is_seen() -> None:
    text = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:4\n"
        "#EXTINF:1.0,\nseg-4.m4s\n#EXT-X-ENDLIST\n"
    )
    playlist = parse_media_playlist(text)
    assert playlist.ended and playlist.hint is None and playlist.next_part == (5, 0)


def test_not_a_playlist() -> None:
    with pytest.raises(ValueError, match="EXTM3U"):
        parse_media_playlist("<html>")


def test_which_parts_a_viewer_fetches() -> None:
    listed = [f"p/v1/part-{n}.m4s" for n in range(10, 16)]
    # Joining: the last three (PART-HOLD-BACK), like hls.js.
    assert parts_to_fetch(listed, set(), 3) == listed[-3:]
    # Having part-13 (by name, whatever the URI around it): what follows it.
    assert parts_to_fetch(listed, {"part-13.m4s"}, 1) == listed[4:]
    assert parts_to_fetch(listed, {"part-15.m4s", "part-11.m4s"}, 1) == []
    # Fallen out of the window: go on from the newest part.
    assert parts_to_fetch(listed, {"part-2.m4s"}, 1) == listed[-1:]
