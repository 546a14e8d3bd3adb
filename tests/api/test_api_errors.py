"""Error plumbing and headers: JSON errors everywhere under /v1, body limits,
X-Request-Id on every response of the server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from live.api.body import MAX_BODY_BYTES
from live.store import SqliteStore

# -- routing errors -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1", "/v1/", "/v1/livestreams/ls_x/nope"])
async def test_unknown_route_under_v1(
    client: TestClient, admin: dict[str, str], error: Any, path: str
) -> None:
    await error(await client.get(path, headers=admin), 404, "not_found")


async def test_unknown_route_with_a_body_is_still_404(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    response = await client.post("/v1/nothing", data=b"{broken", headers=admin)
    await error(response, 404, "not_found")


async def test_wrong_method(client: TestClient, admin: dict[str, str], error: Any) -> None:
    response = await client.put("/v1/livestreams", json={}, headers=admin)
    await error(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= set(response.headers["Allow"].split(","))


# -- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": }', b"name=x", b'{"name": NaN}', b'{"name": "\xff\xfe"}'],
)
async def test_broken_json(
    client: TestClient, admin: dict[str, str], error: Any, raw: bytes
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = await client.post("/v1/livestreams", data=raw, headers=headers)
    await error(response, 400, "invalid_json")


@pytest.mark.parametrize("raw", [b"[]", b'"name"', b"null", b"42", b'[{"name": "x"}]'])
async def test_body_must_be_an_object(
    client: TestClient, admin: dict[str, str], error: Any, raw: bytes
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = await client.post("/v1/livestreams", data=raw, headers=headers)
    await error(response, 400, "invalid_json")


async def test_body_too_large(client: TestClient, admin: dict[str, str], error: Any) -> None:
    raw = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await client.post("/v1/livestreams", data=io.BytesIO(raw), headers=admin)
    await error(response, 413, "payload_too_large")


async def test_chunked_body_too_large(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post("/v1/livestreams", data=chunks(), headers=admin)
    await error(response, 413, "payload_too_large")


async def test_body_just_under_the_limit_is_read(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    raw = b'{"name": "ok", "pad": "' + b"x" * (MAX_BODY_BYTES - 100) + b'"}'
    response = await client.post("/v1/livestreams", data=io.BytesIO(raw), headers=admin)
    await error(response, 400, "invalid_parameter_value", "pad")  # read, parsed, validated


# -- unexpected failures -------------------------------------------------------------------


async def test_unexpected_exception_is_a_500_without_details(
    client: TestClient,
    admin: dict[str, str],
    store: SqliteStore,
    error: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(livestream_id: str) -> None:
        raise RuntimeError("database exploded: secret internals")

    monkeypatch.setattr(store, "get_livestream", broken)
    response = await client.get("/v1/livestreams/ls_x", headers=admin)
    await error(response, 500, "internal_error")
    text = await response.text()
    assert "secret internals" not in text and "Traceback" not in text
    assert response.headers["X-Request-Id"]


async def test_unexpected_exception_outside_v1(client: TestClient, error: Any) -> None:
    response = await client.get("/explode")
    await error(response, 500, "internal_error")
    assert "secret detail" not in await response.text()
    assert response.headers["X-Request-Id"]


# -- headers on every response -------------------------------------------------------------


async def test_every_v1_response_is_json(
    client: TestClient, admin: dict[str, str], reader: dict[str, str]
) -> None:
    ls = await (await client.post("/v1/livestreams", json={"name": "x"}, headers=admin)).json()
    responses = [
        await client.get("/v1/livestreams", headers=admin),
        await client.get("/v1/livestreams"),
        await client.get("/v1/nope", headers=admin),
        await client.put("/v1/livestreams", headers=admin),
        await client.post("/v1/livestreams", json={"name": "x"}, headers=reader),
        await client.delete(f"/v1/livestreams/{ls['id']}", headers=admin),
    ]
    assert [r.status for r in responses] == [200, 401, 404, 405, 403, 204]
    for response in responses:
        assert response.headers["Content-Type"].startswith("application/json")


async def test_request_id_on_every_response(client: TestClient, admin: dict[str, str]) -> None:
    responses = [
        await client.get("/healthz"),
        await client.get("/no/such/page"),
        await client.get("/v1/livestreams"),
        await client.get("/v1/livestreams", headers=admin),
        await client.get("/v1/missing", headers=admin),
        await client.post("/v1/livestreams", data=b"{", headers=admin),
    ]
    assert [r.status for r in responses] == [200, 404, 401, 200, 404, 400]
    ids = [r.headers.get("X-Request-Id") for r in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)


async def test_incoming_request_id_is_kept(client: TestClient) -> None:
    for path in ("/healthz", "/v1/livestreams", "/nowhere"):
        response = await client.get(path, headers={"X-Request-Id": "edge-7f3a.01:b"})
        assert response.headers["X-Request-Id"] == "edge-7f3a.01:b"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", "<script>", "-lead"])
async def test_insane_request_id_is_replaced(client: TestClient, bad: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": bad})
    replaced = response.headers["X-Request-Id"]
    assert replaced and replaced != bad and len(replaced) <= 128


async def test_request_id_of_128_chars_is_kept(client: TestClient) -> None:
    rid = "a" * 128
    response = await client.get("/healthz", headers={"X-Request-Id": rid})
    assert response.headers["X-Request-Id"] == rid
