"""Delivery directives: parsing, the immediate-400 rules, query stripping."""

from __future__ import annotations

import pytest

from live.hls.directives import (
    DirectiveError,
    Directives,
    advance_part_limit,
    check_blocking,
    parse_directives,
    query_params,
    strip_hls_params,
)


def test_parse_valid() -> None:
    assert parse_directives({}) == Directives()
    assert parse_directives({"_HLS_msn": "12"}) == Directives(msn=12)
    assert parse_directives({"_HLS_msn": "12", "_HLS_part": "0", "_HLS_skip": "YES"}) == (
        Directives(msn=12, part=0, skip=True)
    )
    assert parse_directives({"_HLS_skip": "v2"}).skip


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"_HLS_part": "1"}, "_HLS_part"),  # part without msn
        ({"_HLS_msn": "x"}, "_HLS_msn"),
        ({"_HLS_msn": "-1"}, "_HLS_msn"),
        ({"_HLS_msn": "1.5"}, "_HLS_msn"),
        ({"_HLS_msn": ""}, "_HLS_msn"),
        ({"_HLS_msn": "1", "_HLS_part": "+2"}, "_HLS_part"),
        ({"_HLS_msn": "9" * 40}, "_HLS_msn"),
        ({"_HLS_skip": "NO"}, "_HLS_skip"),
    ],
)
def test_parse_invalid(query: dict[str, str], param: str) -> None:
    with pytest.raises(DirectiveError) as err:
        parse_directives(query)
    assert err.value.param == param


def test_advance_part_limit() -> None:
    assert advance_part_limit(0.2) == 15
    assert advance_part_limit(0.5) == 6
    assert advance_part_limit(1.0) == 3
    assert advance_part_limit(2.0) == 3


@pytest.mark.parametrize(
    ("msn", "part", "ok"),
    [
        (0, None, True),  # old
        (10, None, True),
        (12, None, True),  # last + 2
        (13, None, False),  # last + 3
        (10, 3 + 15, True),  # the limit past the newest part
        (10, 3 + 16, False),
        (11, 15, True),
        (11, 16, False),
        (3, 500, True),  # old segments: any part index is just "old"
    ],
)
def test_check_blocking(msn: int, part: int | None, ok: bool) -> None:
    d = Directives(msn=msn, part=part)
    if ok:
        check_blocking(d, last_msn=10, last_part=3, part_target=0.2)
    else:
        with pytest.raises(DirectiveError):
            check_blocking(d, last_msn=10, last_part=3, part_target=0.2)


def test_check_blocking_before_any_part() -> None:
    check_blocking(Directives(msn=1, part=0), last_msn=-1, last_part=-1, part_target=0.2)
    with pytest.raises(DirectiveError):
        check_blocking(Directives(msn=2), last_msn=-1, last_part=-1, part_target=0.2)


def test_strip_hls_params_keeps_the_rest_verbatim() -> None:
    assert strip_hls_params("") == ""
    assert strip_hls_params("_HLS_msn=3&_HLS_part=1") == ""
    assert strip_hls_params("tok=abc&_HLS_msn=3&x=%2F%20&_HLS_skip=YES") == "tok=abc&x=%2F%20"
    assert strip_hls_params("a&&b=1") == "a&b=1"
    assert strip_hls_params('q="x"') == "q=%22x%22"


def test_query_params_decode_like_a_form_and_keep_the_first_value() -> None:
    assert query_params("") == {}
    assert query_params("_HLS_msn=3&_HLS_part=1&_HLS_msn=9") == {"_HLS_msn": "3", "_HLS_part": "1"}
    assert query_params("%5FHLS_skip=YES&a+b=c%20d&flag") == {
        "_HLS_skip": "YES",
        "a b": "c d",
        "flag": "",
    }
