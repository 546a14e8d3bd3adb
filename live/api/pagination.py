"""`page` / `page_size` query parameters and the list answer of API.md."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from live.api.errors import ApiError, invalid

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Beyond this the offset stops fitting comfortably in a 64-bit integer; no real
# list is that long, so it is refused rather than passed to the store.
MAX_PAGE = 1_000_000_000

_DIGITS = re.compile(r"[0-9]{1,10}")  # no sign, spaces or "1_000", which int() accepts


def _positive_int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        raise invalid(name, f"{name} must be an integer from 1")
    return int(text)


def pagination(request: web.Request) -> tuple[int, int]:
    """(page, page_size) from the query, validated."""
    page = _positive_int(request, "page", 1)
    if page > MAX_PAGE:
        raise invalid("page", f"page must be at most {MAX_PAGE}")
    page_size = _positive_int(request, "page_size", DEFAULT_PAGE_SIZE)
    if page_size > MAX_PAGE_SIZE:
        raise ApiError(
            400,
            "page_size_more_than_max",
            f"page_size must be at most {MAX_PAGE_SIZE}",
            "page_size",
        )
    return page, page_size


def page_answer(data: Sequence[Any], page: int, page_size: int, total: int) -> dict[str, Any]:
    return {"data": list(data), "page": page, "page_size": page_size, "total": total}
