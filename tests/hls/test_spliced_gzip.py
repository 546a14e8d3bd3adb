"""Spliced gzip: one compression per template, a valid gzip of each player's copy."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hls_testing import add_parts, make_window
from hypothesis import given, settings
from hypothesis import strategies as st

from live.hls.playlist import render_media_playlist
from live.hls.spliced_gzip import (
    CRC_TABLE_AFTER,
    MAX_INSERT,
    SplicedCrc,
    SplicedGzip,
    gzip_bytes,
)


def playlist_pieces() -> list[bytes]:
    window = make_window(td=1)
    for index in range(40):
        if index % 5 == 0:
            window.start_segment()
        add_parts(window, 1)
    text = render_media_playlist(window.snapshot(), low_latency=True, query="\x00")
    return [piece.encode() for piece in text.split("?\x00")]


def test_every_player_gets_a_gzip_of_its_own_copy() -> None:
    pieces = playlist_pieces()
    assert len(pieces) > 20
    splicer = SplicedGzip(pieces, 19)
    assert splicer.spliced
    for player in (b"?pl=pl_AAAAAAAAAAAA", b"?pl=pl_zz-_09zz-_09", b"?" + b"9" * 18):
        text, gz = splicer.render(player)
        assert text == player.join(pieces)
        assert gzip.decompress(gz) == text
        assert text.count(player) == len(pieces) - 1


def test_copies_compress_almost_as_well_as_gzipping_each() -> None:
    """Only the first insert is stored raw; later ones are back-references."""
    pieces = playlist_pieces()
    player = b"?pl=pl_0123456789ab"
    text, gz = SplicedGzip(pieces, len(player)).render(player)
    assert len(gz) <= len(gzip_bytes(text)) + len(player) + 16
    assert len(gz) < len(text) / 3


def test_gzip_header_and_trailer_are_exact() -> None:
    pieces = [b"#EXTM3U\npart-1.m4s", b"\npart-2.m4s", b"\n"]
    text, gz = SplicedGzip(pieces, 4).render(b"?a=b")
    assert gz[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no mtime
    assert gz[-8:-4] == zlib.crc32(text).to_bytes(4, "little")
    assert gz[-4:] == len(text).to_bytes(4, "little")
    # The first insert is a stored block right after the first piece's output.
    assert b"\x04\x00\xfb\xff?a=b" in gz


def test_non_ascii_template_falls_back_to_gzip_per_copy() -> None:
    pieces = ["#EXT-X-DATERANGE:ID=\"é\"\nseg-1.m4s".encode(), b"\nseg-2.m4s", b"\n"]
    splicer = SplicedGzip(pieces, 3)
    assert not splicer.spliced
    text, gz = splicer.render(b"?x=")
    assert gzip.decompress(gz) == text == b"?x=".join(pieces)


def test_a_template_without_inserts_is_plain_gzip() -> None:
    splicer = SplicedGzip([b"#EXTM3U\n#EXT-X-ENDLIST\n"], 5)
    assert not splicer.spliced
    assert gzip.decompress(splicer.render(b"?a=bc")[1]) == b"#EXTM3U\n#EXT-X-ENDLIST\n"


def test_insert_length_is_checked() -> None:
    splicer = SplicedGzip([b"a", b"b"], 3)
    assert gzip.decompress(splicer.render(b"?ab")[1]) == b"a?abb"
    with pytest.raises(ValueError):
        splicer.render(b"?abc")
    with pytest.raises(ValueError):
        SplicedGzip([b"a", b"b"], MAX_INSERT + 1)
    with pytest.raises(ValueError):
        SplicedGzip([b"a", b"b"], 0)


ascii_text = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(ascii_text.map(str.encode), min_size=1, max_size=30),
    insert=st.binary(min_size=1, max_size=MAX_INSERT),
)
def test_any_template_and_insert_round_trip(pieces: list[bytes], insert: bytes) -> None:
    text, gz = SplicedGzip(pieces, len(insert)).render(insert)
    assert text == insert.join(pieces)
    assert gzip.decompress(gz) == text


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=400), min_size=1, max_size=20),
    insert=st.binary(min_size=4, max_size=MAX_INSERT),
)
def test_crc_of_a_copy_without_the_copy(pieces: list[bytes], insert: bytes) -> None:
    assert SplicedCrc(pieces, len(insert)).of(insert) == zlib.crc32(insert.join(pieces))


def test_gzip_of_a_copy_matches_its_text() -> None:
    """The gzip of a copy is assembled without its text, and decodes to it."""
    pieces = playlist_pieces()
    splicer = SplicedGzip(pieces, 19)
    player = b"?pl=pl_QQQQQQQQQQQQ"
    gz = splicer.gzip(player)
    assert gzip.decompress(gz) == splicer.text(player) == player.join(pieces)


def test_a_popular_template_switches_to_its_crc_table_and_stays_exact() -> None:
    """Past CRC_TABLE_AFTER copies the CRC comes from the table, not the text."""
    pieces = playlist_pieces()
    splicer = SplicedGzip(pieces, 19)
    for n in range(CRC_TABLE_AFTER + 20):
        player = b"?pl=pl_%012d" % (n * 7919)
        gz = splicer.gzip(player)
        assert gzip.decompress(gz) == player.join(pieces)
        assert gz[-8:-4] == zlib.crc32(player.join(pieces)).to_bytes(4, "little")
    assert splicer.crc_table_built
