"""Playlist delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`), HLS §6.2.5.

Parsing and the immediate-400 rules are pure so each rule is tested on its own; the
handler only decides when they apply (never after ENDLIST, never in standard mode).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

_DIGITS = re.compile(r"[0-9]{1,18}")
_SKIP_VALUES = {"YES", "v2"}


class DirectiveError(ValueError):
    """A directive the server must refuse with 400; `param` names the culprit."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class Directives:
    msn: int | None = None
    part: int | None = None
    skip: bool = False

    @property
    def blocking(self) -> bool:
        return self.msn is not None


def parse_directives(query: Mapping[str, str]) -> Directives:
    """Read the directives of a media playlist request; malformed values raise."""
    msn = _parse_int(query, "_HLS_msn")
    part = _parse_int(query, "_HLS_part")
    if part is not None and msn is None:
        raise DirectiveError("_HLS_part", "_HLS_part requires _HLS_msn")
    skip_value = query.get("_HLS_skip")
    if skip_value is not None and skip_value not in _SKIP_VALUES:
        raise DirectiveError("_HLS_skip", "_HLS_skip must be YES or v2")
    return Directives(msn=msn, part=part, skip=skip_value is not None)


def query_params(raw_query: str) -> dict[str, str]:
    """The first value of each name in a raw query string, decoded as a form would be.

    A playlist request's query is a few short pairs: splitting it here costs less than
    building the request's URL and a multidict from it."""
    params: dict[str, str] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name, value = unquote_plus(name), unquote_plus(value)
        params.setdefault(name, value)
    return params


def _parse_int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise DirectiveError(name, f"{name} must be a non-negative integer")
    return int(raw)


def advance_part_limit(part_target: float) -> int:
    """How far ahead a client may ask for parts (§6.2.5.2): 3 s of parts, at least 3."""
    if part_target < 1:
        return math.floor(3 / part_target + 1e-9)
    return 3


def check_blocking(d: Directives, *, last_msn: int, last_part: int, part_target: float) -> None:
    """Refuse requests that ask too far into the future (§6.2.5.2 SHOULDs).

    `last_msn`/`last_part` locate the newest part (before any: the window's first MSN
    minus one, and -1). An msn more than two segments ahead, or a part index more than
    the Advance Part Limit past the newest part, will not be satisfied soon enough to be
    worth holding a connection for.
    """
    if d.msn is None:
        return
    if d.msn > last_msn + 2:
        raise DirectiveError("_HLS_msn", "_HLS_msn is too far in the future")
    if d.part is None:
        return
    limit = advance_part_limit(part_target)
    if d.msn == last_msn and d.part > last_part + limit:
        raise DirectiveError("_HLS_part", "_HLS_part is beyond the advance part limit")
    if d.msn > last_msn and d.part > limit:
        raise DirectiveError("_HLS_part", "_HLS_part is beyond the advance part limit")


def strip_hls_params(raw_query: str) -> str:
    """The request's query without `_HLS_*` pairs, kept as sent (still percent-encoded),
    safe to place inside a quoted playlist attribute."""
    if "HLS_" not in raw_query and "&" not in raw_query:  # a player's id, or nothing
        return raw_query.replace('"', "%22")
    kept = [
        pair
        for pair in raw_query.split("&")
        if pair and not pair.split("=", 1)[0].startswith("_HLS_")
    ]
    return "&".join(kept).replace('"', "%22")
