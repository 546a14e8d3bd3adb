"""/v1/livestreams: CRUD, listing, moderation and history, as API.md describes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from live.control import LiveSession
from live.store import SqliteStore
from live.store.models import Session
from live.store.times import utcnow

LIVESTREAM_FIELDS = {
    "id", "name", "status", "stream_key", "playback_id", "record", "latency_mode",
    "transcode", "reconnect_window_s", "max_duration_s", "srt_passphrase", "ingest",
    "playback", "current_session", "ban", "created_at", "updated_at",
}  # fmt: skip
SESSION_FIELDS = {
    "id", "livestream_id", "protocol", "remote_addr", "encoder", "started_at", "ended_at",
    "duration_s", "end_reason", "video", "audio", "bytes_in", "peak_viewers", "total_views",
    "asset_id",
}  # fmt: skip
RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


async def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/livestreams", json={"name": "stream", **body}, headers=headers
    )
    assert response.status == 201, await response.text()
    return await response.json()


# -- create ------------------------------------------------------------------------


async def test_create_minimal(client: TestClient, admin: dict[str, str]) -> None:
    response = await client.post("/v1/livestreams", json={"name": "Main"}, headers=admin)
    assert response.status == 201
    assert response.content_type == "application/json"
    ls = await response.json()
    assert set(ls) == LIVESTREAM_FIELDS
    assert ls["id"].startswith("ls_")
    assert ls["name"] == "Main"
    assert ls["status"] == "idle"
    assert ls["record"] is True
    assert (ls["latency_mode"], ls["transcode"]) == ("low", "auto")
    assert (ls["reconnect_window_s"], ls["max_duration_s"]) == (10, 43200)
    assert ls["srt_passphrase"] is None
    assert ls["current_session"] is None and ls["ban"] is None
    key, pb = ls["stream_key"], ls["playback_id"]
    assert ls["ingest"] == {
        "rtmp": f"rtmp://live.test:1935/live/{key}",
        "rtmps": f"rtmps://live.test:1936/live/{key}",
        "srt": f"srt://live.test:9000?streamid={key}",
        "whip": "http://live.test:8080/whip",
    }
    assert ls["playback"] == {
        "hls": f"http://live.test:8080/live/{pb}/index.m3u8",
        "player": f"http://live.test:8080/play/{pb}",
    }
    assert RFC3339_Z.fullmatch(ls["created_at"]) and RFC3339_Z.fullmatch(ls["updated_at"])


async def test_create_with_every_setting(client: TestClient, admin: dict[str, str]) -> None:
    settings = {
        "record": False,
        "latency_mode": "standard",
        "transcode": "ladder",
        "reconnect_window_s": 0,
        "max_duration_s": 5,
        "srt_passphrase": "a" * 79,
    }
    ls = await create(client, admin, **settings)
    assert {k: ls[k] for k in settings} == settings
    response = await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)
    assert await response.json() == ls


async def test_stream_keys_and_playback_ids_are_distinct_and_long(
    client: TestClient, admin: dict[str, str]
) -> None:
    streams = [await create(client, admin) for _ in range(10)]
    keys = {ls["stream_key"] for ls in streams}
    pbs = {ls["playback_id"] for ls in streams}
    assert len(keys) == len(pbs) == 10 and not keys & pbs
    for ls in streams:
        assert re.fullmatch(r"sk_[A-Za-z0-9_-]{22,}", ls["stream_key"])
        assert re.fullmatch(r"pb_[A-Za-z0-9_-]{22,}", ls["playback_id"])
        assert ls["stream_key"][3:] not in ls["playback_id"]


@pytest.mark.parametrize("body", [{}, {"name": None}, {"record": False}])
async def test_create_without_name(
    client: TestClient, admin: dict[str, str], error: Any, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/livestreams", json=body, headers=admin)
    await error(response, 400, "parameter_missing", "name")


async def test_create_with_empty_body(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    response = await client.post("/v1/livestreams", headers=admin)
    await error(response, 400, "parameter_missing", "name")


INVALID_SETTINGS = [
    ("name", ""),
    ("name", "   "),
    ("name", 5),
    ("name", "x" * 201),
    ("record", "yes"),
    ("record", 1),
    ("latency_mode", "ultra"),
    ("latency_mode", None),
    ("transcode", "h265"),
    ("transcode", ["auto"]),
    ("reconnect_window_s", "10"),
    ("reconnect_window_s", -1),
    ("reconnect_window_s", 10.5),
    ("reconnect_window_s", True),
    ("reconnect_window_s", 3601),
    ("max_duration_s", 0),
    ("max_duration_s", 10.0),
    ("max_duration_s", None),
    ("srt_passphrase", "short"),
    ("srt_passphrase", "p" * 80),
    ("srt_passphrase", 1234567890123),
    ("colour", "blue"),
    ("stream_key", "sk_mine"),
]


@pytest.mark.parametrize(("field", "value"), INVALID_SETTINGS)
async def test_create_rejects_invalid_values(
    client: TestClient, admin: dict[str, str], error: Any, field: str, value: Any
) -> None:
    body = {"name": "ok", field: value}
    response = await client.post("/v1/livestreams", json=body, headers=admin)
    await error(response, 400, "invalid_parameter_value", field)


# -- read and list ---------------------------------------------------------------------


async def test_get_unknown(client: TestClient, admin: dict[str, str], error: Any) -> None:
    response = await client.get("/v1/livestreams/ls_missing", headers=admin)
    found = await error(response, 404, "livestream_not_found", "id")
    assert "ls_missing" in found["message"]


async def test_list_newest_first_with_pages(client: TestClient, admin: dict[str, str]) -> None:
    ids = [(await create(client, admin, name=f"s{i}"))["id"] for i in range(25)]
    newest_first = ids[::-1]
    response = await client.get("/v1/livestreams", headers=admin)
    body = await response.json()
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 25)
    assert [ls["id"] for ls in body["data"]] == newest_first[:20]
    assert set(body["data"][0]) == LIVESTREAM_FIELDS
    response = await client.get("/v1/livestreams?page=2&page_size=20", headers=admin)
    body = await response.json()
    assert [ls["id"] for ls in body["data"]] == newest_first[20:]
    assert (body["page"], body["total"]) == (2, 25)
    response = await client.get("/v1/livestreams?page=9&page_size=100", headers=admin)
    body = await response.json()
    assert (body["data"], body["page_size"], body["total"]) == ([], 100, 25)


async def test_list_page_size_over_max(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    response = await client.get("/v1/livestreams?page_size=101", headers=admin)
    await error(response, 400, "page_size_more_than_max", "page_size")


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("page=abc", "page"),
        ("page=", "page"),
        ("page=%2B2", "page"),
        ("page=99999999999", "page"),
        ("page_size=0", "page_size"),
        ("page_size=ten", "page_size"),
        ("status=offline", "status"),
    ],
)
async def test_list_rejects_bad_query(
    client: TestClient, admin: dict[str, str], error: Any, query: str, param: str
) -> None:
    response = await client.get(f"/v1/livestreams?{query}", headers=admin)
    await error(response, 400, "invalid_parameter_value", param)


async def test_list_status_filter(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    idle = await create(client, admin, name="idle")
    live = await create(client, admin, name="live")
    banned = await create(client, admin, name="banned")
    expired = await create(client, admin, name="ban expired")
    await store.set_live(live["id"], True)
    await client.patch(f"/v1/livestreams/{banned['id']}/ban", headers=admin)
    await store.ban(expired["id"], "old", utcnow() - timedelta(seconds=1))
    for status, expected in [
        ("idle", {idle["id"], expired["id"]}),
        ("live", {live["id"]}),
        ("banned", {banned["id"]}),
    ]:
        response = await client.get(f"/v1/livestreams?status={status}", headers=admin)
        body = await response.json()
        assert {ls["id"] for ls in body["data"]} == expected
        assert body["total"] == len(expected)
        assert all(ls["status"] == status for ls in body["data"])


async def test_live_stream_shows_current_session(
    client: TestClient, admin: dict[str, str], store: SqliteStore, control: Any
) -> None:
    ls = await create(client, admin)
    session = Session(livestream_id=ls["id"], protocol="rtmp", remote_addr="203.0.113.7:5000")
    health = {"bitrate_kbps": 2980, "fps": 29.97, "keyframe_interval_s": 1.0}
    control.sessions[ls["id"]] = LiveSession(
        session, ingest_health=health, warnings=["Set the keyframe interval to 1 s."]
    )
    response = await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)
    assert (await response.json())["current_session"] is None  # store says not live
    await store.set_live(ls["id"], True)
    body = await (await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)).json()
    assert body["status"] == "live"
    current = body["current_session"]
    assert current["id"] == session.id and current["ended_at"] is None
    assert current["protocol"] == "rtmp" and current["remote_addr"] == "203.0.113.7:5000"
    assert current["reconnecting"] is False
    assert current["ingest_health"] == health
    assert current["warnings"] == ["Set the keyframe interval to 1 s."]


# -- update and delete --------------------------------------------------------------------


async def test_patch(client: TestClient, admin: dict[str, str]) -> None:
    ls = await create(client, admin, srt_passphrase="0123456789")
    changes = {
        "name": "Renamed",
        "record": False,
        "latency_mode": "standard",
        "transcode": "passthrough",
        "reconnect_window_s": 30,
        "max_duration_s": 3600,
        "srt_passphrase": None,
    }
    response = await client.patch(f"/v1/livestreams/{ls['id']}", json=changes, headers=admin)
    assert response.status == 200
    body = await response.json()
    assert {k: body[k] for k in changes} == changes
    assert body["stream_key"] == ls["stream_key"]
    assert body["created_at"] == ls["created_at"]
    again = await (await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)).json()
    assert again == body


async def test_patch_nothing(client: TestClient, admin: dict[str, str]) -> None:
    ls = await create(client, admin)
    response = await client.patch(f"/v1/livestreams/{ls['id']}", json={}, headers=admin)
    assert response.status == 200
    assert await response.json() == ls


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", None), ("name", ""), ("record", "false"), ("status", "live"), ("id", "ls_x")],
)
async def test_patch_rejects_invalid_values(
    client: TestClient, admin: dict[str, str], error: Any, field: str, value: Any
) -> None:
    ls = await create(client, admin)
    response = await client.patch(f"/v1/livestreams/{ls['id']}", json={field: value}, headers=admin)
    await error(response, 400, "invalid_parameter_value", field)


async def test_patch_unknown(client: TestClient, admin: dict[str, str], error: Any) -> None:
    response = await client.patch("/v1/livestreams/ls_nope", json={"name": "x"}, headers=admin)
    await error(response, 404, "livestream_not_found", "id")


async def test_delete(client: TestClient, admin: dict[str, str], control: Any) -> None:
    ls = await create(client, admin)
    response = await client.delete(f"/v1/livestreams/{ls['id']}", headers=admin)
    assert response.status == 204
    assert response.content_type == "application/json"
    assert await response.read() == b""
    assert control.disconnects == [(ls["id"], "deleted")]
    response = await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)
    assert response.status == 404


async def test_delete_unknown(
    client: TestClient, admin: dict[str, str], error: Any, control: Any
) -> None:
    response = await client.delete("/v1/livestreams/ls_nope", headers=admin)
    await error(response, 404, "livestream_not_found", "id")
    assert control.disconnects == []


# -- moderation --------------------------------------------------------------------------


async def test_ban_with_reason_and_until(
    client: TestClient, admin: dict[str, str], control: Any
) -> None:
    ls = await create(client, admin)
    until = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    until_text = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    response = await client.patch(
        f"/v1/livestreams/{ls['id']}/ban",
        json={"reason": "terms of service", "until": until_text},
        headers=admin,
    )
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "banned"
    assert body["ban"]["reason"] == "terms of service"
    assert body["ban"]["until"] == until_text
    assert RFC3339_Z.fullmatch(body["ban"]["banned_at"])
    assert control.disconnects == [(ls["id"], "banned")]


async def test_ban_accepts_offsets(client: TestClient, admin: dict[str, str]) -> None:
    ls = await create(client, admin)
    response = await client.patch(
        f"/v1/livestreams/{ls['id']}/ban",
        json={"until": "2999-01-01T02:00:00+02:00"},
        headers=admin,
    )
    assert (await response.json())["ban"]["until"] == "2999-01-01T00:00:00Z"


async def test_ban_without_body_is_forever(client: TestClient, admin: dict[str, str]) -> None:
    ls = await create(client, admin)
    response = await client.patch(f"/v1/livestreams/{ls['id']}/ban", headers=admin)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "banned"
    assert body["ban"]["reason"] is None and body["ban"]["until"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"until": "2001-01-01T00:00:00Z"}, "until"),
        ({"until": "tomorrow"}, "until"),
        ({"until": "2999-01-01T00:00:00"}, "until"),  # no offset
        ({"until": "2999-01-01"}, "until"),
        ({"until": 1893456000}, "until"),
        ({"until": "9999-12-31T23:00:00-02:00"}, "until"),  # past datetime's range in UTC
        ({"reason": 42}, "reason"),
        ({"reason": "r" * 501}, "reason"),
        ({"duration": 60}, "duration"),
    ],
)
async def test_ban_rejects_invalid_body(
    client: TestClient, admin: dict[str, str], error: Any, control: Any, body: Any, param: str
) -> None:
    ls = await create(client, admin)
    response = await client.patch(f"/v1/livestreams/{ls['id']}/ban", json=body, headers=admin)
    await error(response, 400, "invalid_parameter_value", param)
    assert control.disconnects == []


async def test_expired_ban_reads_idle(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    ls = await create(client, admin)
    await store.ban(ls["id"], "brief", utcnow() - timedelta(seconds=1))
    body = await (await client.get(f"/v1/livestreams/{ls['id']}", headers=admin)).json()
    assert (body["status"], body["ban"]) == ("idle", None)


async def test_unban(client: TestClient, admin: dict[str, str]) -> None:
    ls = await create(client, admin)
    await client.patch(f"/v1/livestreams/{ls['id']}/ban", json={"reason": "x"}, headers=admin)
    response = await client.patch(f"/v1/livestreams/{ls['id']}/unban", headers=admin)
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["ban"]) == ("idle", None)


async def test_disconnect(
    client: TestClient, admin: dict[str, str], control: Any, store: SqliteStore
) -> None:
    ls = await create(client, admin)
    response = await client.post(f"/v1/livestreams/{ls['id']}/disconnect", headers=admin)
    assert response.status == 200  # nothing was live: still 200
    assert (await response.json())["id"] == ls["id"]
    await store.set_live(ls["id"], True)
    control.sessions[ls["id"]] = {"id": "ses_1"}
    response = await client.post(f"/v1/livestreams/{ls['id']}/disconnect", headers=admin)
    assert response.status == 200
    assert control.disconnects == [(ls["id"], "kicked"), (ls["id"], "kicked")]


async def test_reset_stream_key(
    client: TestClient, admin: dict[str, str], control: Any, store: SqliteStore
) -> None:
    ls = await create(client, admin)
    response = await client.post(f"/v1/livestreams/{ls['id']}/reset-stream-key", headers=admin)
    assert response.status == 200
    body = await response.json()
    new_key = body["stream_key"]
    assert new_key.startswith("sk_") and new_key != ls["stream_key"]
    assert body["ingest"]["rtmp"].endswith(f"/{new_key}")
    assert body["playback_id"] == ls["playback_id"]
    assert control.disconnects == [(ls["id"], "key_reset")]
    assert await store.get_livestream_by_stream_key(ls["stream_key"]) is None


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("PATCH", "/ban"),
        ("PATCH", "/unban"),
        ("POST", "/disconnect"),
        ("POST", "/reset-stream-key"),
        ("GET", "/history"),
    ],
)
async def test_actions_on_unknown_livestream(
    client: TestClient, admin: dict[str, str], error: Any, control: Any, method: str, suffix: str
) -> None:
    response = await client.request(method, f"/v1/livestreams/ls_nope{suffix}", headers=admin)
    await error(response, 404, "livestream_not_found", "id")
    assert control.disconnects == []


# -- history ------------------------------------------------------------------------------


async def test_history(client: TestClient, admin: dict[str, str], store: SqliteStore) -> None:
    ls = await create(client, admin)
    start = utcnow() - timedelta(hours=2)
    old = await store.create_session(
        Session(
            livestream_id=ls["id"],
            protocol="rtmp",
            remote_addr="203.0.113.7:53211",
            encoder="obs-output module (libobs version 30.1.2)",
            started_at=start,
            video={
                "codec": "h264",
                "width": 1280,
                "height": 720,
                "fps": 30.0,
                "bitrate_kbps": 3000,
            },
            audio={"codec": "aac", "sample_rate": 48000, "channels": 2, "bitrate_kbps": 128},
        )
    )
    await store.end_session(
        old.id, start + timedelta(seconds=3621.4), "publisher_disconnected", bytes_in=1357
    )
    current = await store.create_session(
        Session(livestream_id=ls["id"], protocol="srt", started_at=utcnow() - timedelta(seconds=5))
    )
    response = await client.get(f"/v1/livestreams/{ls['id']}/history", headers=admin)
    assert response.status == 200
    body = await response.json()
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 2)
    newest, oldest = body["data"]
    assert set(newest) == set(oldest) == SESSION_FIELDS
    assert newest["id"] == current.id
    assert newest["ended_at"] is None and newest["end_reason"] is None
    assert newest["duration_s"] >= 5
    assert oldest["id"] == old.id
    assert oldest["protocol"] == "rtmp"
    assert oldest["duration_s"] == pytest.approx(3621.4)
    assert oldest["end_reason"] == "publisher_disconnected"
    assert oldest["video"]["width"] == 1280 and oldest["audio"]["channels"] == 2
    assert oldest["bytes_in"] == 1357
    assert (oldest["peak_viewers"], oldest["total_views"], oldest["asset_id"]) == (0, 0, None)
    assert RFC3339_Z.fullmatch(oldest["started_at"]) and RFC3339_Z.fullmatch(oldest["ended_at"])
    response = await client.get(
        f"/v1/livestreams/{ls['id']}/history?page=2&page_size=1", headers=admin
    )
    body = await response.json()
    assert [s["id"] for s in body["data"]] == [old.id]


async def test_history_page_size_over_max(
    client: TestClient, admin: dict[str, str], error: Any
) -> None:
    ls = await create(client, admin)
    response = await client.get(f"/v1/livestreams/{ls['id']}/history?page_size=500", headers=admin)
    await error(response, 400, "page_size_more_than_max", "page_size")
