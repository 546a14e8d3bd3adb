"""docs/API.md, the users' reference, lists exactly the routes of /v1/openapi.json,
and the README points to it and names the method of every livestream action."""

from __future__ import annotations

import re
from pathlib import Path

from live.api.openapi import spec

ROOT = Path(__file__).resolve().parents[2]
_ROUTE_HEADING = re.compile(r"^#{2,4} `(GET|POST|PUT|PATCH|DELETE|HEAD) (/v1/\S+)`$", re.MULTILINE)


def _documented() -> set[tuple[str, str]]:
    text = (ROOT / "docs" / "API.md").read_text()
    return {(method, path) for method, path in _ROUTE_HEADING.findall(text)}


def _described() -> set[tuple[str, str]]:
    document = spec()
    base = document["servers"][0]["url"]
    return {
        (method.upper(), base + path) for path, item in document["paths"].items() for method in item
    }


def test_every_route_of_the_openapi_document_is_in_the_reference_and_nothing_else():
    documented, described = _documented(), _described()
    assert described - documented == set(), "routes missing from docs/API.md"
    assert documented - described == set(), "docs/API.md lists routes the server lacks"


def test_the_readme_links_the_reference_and_names_each_actions_method():
    readme = (ROOT / "README.md").read_text()
    assert "../shared/" not in readme
    assert "(docs/API.md)" in readme
    for action in (
        "PATCH /v1/livestreams/{id}/ban", "PATCH /v1/livestreams/{id}/unban",
        "POST /v1/livestreams/{id}/disconnect", "POST /v1/livestreams/{id}/reset-stream-key",
    ):  # fmt: skip
        assert f"`{action}`" in readme, action
