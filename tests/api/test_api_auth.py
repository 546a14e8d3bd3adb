"""API keys: authentication, the read scope, and /v1/api-keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from live.store import SqliteStore


async def _livestream(client: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/livestreams", json={"name": "s", **body}, headers=admin)
    return await response.json()


# -- 401 ----------------------------------------------------------------------------------


async def test_missing_key(client: TestClient, error: Any) -> None:
    response = await client.get("/v1/livestreams")
    await error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "lk_wrong"},
        {"Authorization": "Bearer lk_wrong"},
        {"Authorization": "Bearer "},
        {"X-API-Key": ""},
    ],
)
async def test_wrong_key(client: TestClient, error: Any, headers: dict[str, str]) -> None:
    response = await client.get("/v1/livestreams", headers=headers)
    await error(response, 401, "unauthorized")


async def test_other_auth_schemes_are_not_keys(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    response = await client.get(
        "/v1/livestreams", headers={"Authorization": f"Basic {admin['X-API-Key']}"}
    )
    await error(response, 401, "unauthorized")


async def test_both_header_forms_work(client: TestClient, admin: dict[str, str]) -> None:
    key = admin["X-API-Key"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        response = await client.get("/v1/livestreams", headers=headers)
        assert response.status == 200


async def test_unknown_route_needs_a_key_first(client: TestClient, error: Any) -> None:
    response = await client.get("/v1/nothing-here")
    await error(response, 401, "unauthorized")


async def test_a_deleted_key_stops_working(
    client: TestClient, admin: dict[str, str], store: SqliteStore, error: Any
) -> None:
    key, plaintext = await store.create_api_key("temp", "admin")
    headers = {"X-API-Key": plaintext}
    assert (await client.get("/v1/livestreams", headers=headers)).status == 200
    response = await client.delete(f"/v1/api-keys/{key.id}", headers=admin)
    assert response.status == 204
    await error(await client.get("/v1/livestreams", headers=headers), 401, "unauthorized")


# -- read scope -----------------------------------------------------------------------------


async def test_read_key_never_sees_secrets(
    client: TestClient, admin: dict[str, str], reader: dict[str, str]
) -> None:
    ls = await _livestream(client, admin, srt_passphrase="0123456789")
    assert ls["stream_key"] and ls["srt_passphrase"]
    response = await client.get(f"/v1/livestreams/{ls['id']}", headers=reader)
    assert response.status == 200
    seen = await response.json()
    listed = (await (await client.get("/v1/livestreams", headers=reader)).json())["data"][0]
    for body in (seen, listed):
        assert body["stream_key"] is None
        assert body["srt_passphrase"] is None
        assert body["ingest"] == {
            "rtmp": None,
            "rtmps": None,
            "srt": None,
            "whip": "http://live.test:8080/whip",
        }
        assert body["playback_id"] == ls["playback_id"]
        assert body["playback"] == ls["playback"]
        text = str(body)
        assert ls["stream_key"] not in text and "0123456789" not in text


async def test_read_key_can_read_history(
    client: TestClient, admin: dict[str, str], reader: dict[str, str]
) -> None:
    ls = await _livestream(client, admin)
    response = await client.get(f"/v1/livestreams/{ls['id']}/history", headers=reader)
    assert response.status == 200


WRITES = [
    ("POST", "/v1/livestreams"),
    ("PATCH", "/v1/livestreams/{id}"),
    ("DELETE", "/v1/livestreams/{id}"),
    ("PATCH", "/v1/livestreams/{id}/ban"),
    ("PATCH", "/v1/livestreams/{id}/unban"),
    ("POST", "/v1/livestreams/{id}/disconnect"),
    ("POST", "/v1/livestreams/{id}/reset-stream-key"),
    ("POST", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/ak_whatever"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_read_key_cannot_write(
    client: TestClient,
    admin: dict[str, str],
    reader: dict[str, str],
    control: Any,
    error: Any,
    method: str,
    path: str,
) -> None:
    ls = await _livestream(client, admin)
    url = path.format(id=ls["id"])
    response = await client.request(method, url, json={"name": "x"}, headers=reader)
    await error(response, 403, "forbidden")
    assert control.disconnects == []
    after = await (await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)).json()
    assert after == ls


async def test_read_key_cannot_list_api_keys(
    client: TestClient, reader: dict[str, str], error: Any
) -> None:
    await error(await client.get("/v1/api-keys", headers=reader), 403, "forbidden")


# -- /v1/api-keys -----------------------------------------------------------------------------


async def test_create_api_key_shows_the_secret_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "dashboard", "scope": "read"}, headers=admin
    )
    assert response.status == 201
    created = await response.json()
    assert set(created) == {"id", "name", "scope", "key", "created_at", "last_used_at"}
    assert created["id"].startswith("ak_") and created["key"].startswith("lk_")
    assert (created["name"], created["scope"], created["last_used_at"]) == (
        "dashboard",
        "read",
        None,
    )
    headers = {"X-API-Key": created["key"]}
    assert (await client.get("/v1/livestreams", headers=headers)).status == 200
    assert (await client.post("/v1/livestreams", json={"name": "x"}, headers=headers)).status == 403

    listing = await (await client.get("/v1/api-keys", headers=admin)).json()
    assert listing["total"] == 2
    assert listing["data"][0]["id"] == created["id"]  # newest first
    assert all("key" not in k for k in listing["data"])
    assert created["key"] not in str(listing)
    assert listing["data"][0]["last_used_at"] is not None


async def test_new_admin_key_can_write(client: TestClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "ci", "scope": "admin"}, headers=admin
    )
    key = (await response.json())["key"]
    response = await client.post("/v1/livestreams", json={"name": "x"}, headers={"X-API-Key": key})
    assert response.status == 201


async def test_api_key_scope_defaults_to_read(client: TestClient, admin: dict[str, str]) -> None:
    response = await client.post("/v1/api-keys", json={"name": "x"}, headers=admin)
    assert (await response.json())["scope"] == "read"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({}, 400, "parameter_missing", "name"),
        ({"scope": "admin"}, 400, "parameter_missing", "name"),
        ({"name": ""}, 400, "invalid_parameter_value", "name"),
        ({"name": "x", "scope": "root"}, 400, "invalid_parameter_value", "scope"),
        ({"name": "x", "scope": None}, 400, "invalid_parameter_value", "scope"),
        ({"name": "x", "key": "lk_mine"}, 400, "invalid_parameter_value", "key"),
    ],
)
async def test_create_api_key_validation(
    client: TestClient,
    admin: dict[str, str],
    error: Any,
    body: dict[str, Any],
    status: int,
    code: str,
    param: str,
) -> None:
    response = await client.post("/v1/api-keys", json=body, headers=admin)
    await error(response, status, code, param)


async def test_delete_unknown_api_key(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    response = await client.delete("/v1/api-keys/ak_nope", headers=admin)
    await error(response, 404, "api_key_not_found", "id")


async def test_api_keys_list_pagination(
    client: TestClient, admin: dict[str, str], store: SqliteStore, error: Any
) -> None:
    for i in range(3):
        await store.create_api_key(f"k{i}", "read")
    body = await (await client.get("/v1/api-keys?page=2&page_size=3", headers=admin)).json()
    assert (body["page"], body["page_size"], body["total"], len(body["data"])) == (2, 3, 4, 1)
    response = await client.get("/v1/api-keys?page_size=1000", headers=admin)
    await error(response, 400, "page_size_more_than_max", "page_size")


async def test_undecodable_key_bytes_are_a_wrong_key(client: TestClient) -> None:
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"GET /v1/livestreams HTTP/1.1\r\nHost: t\r\nX-API-Key: lk_\xff\xfe\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b'"unauthorized"' in answer
