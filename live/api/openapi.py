"""`GET /v1/openapi.json`: the OpenAPI 3.1 description of every route of API.md.

Written by hand next to the routes it describes and kept true by a test that runs
schemathesis against the real server (tests/e2e/test_openapi_schemathesis.py) and
one that compares it with the router (tests/api/test_api_openapi.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from live.api.asset_requests import CLIP_MAX_S, HEADERS_MAX, URL_MAX
from live.api.validation import (
    BAN_REASON_MAX,
    MAX_DURATION_MAX,
    NAME_MAX,
    RECONNECT_WINDOW_MAX,
    SRT_PASSPHRASE_MAX,
    SRT_PASSPHRASE_MIN,
)
from live.store.models import (
    ASSET_ERROR_CODES,
    ASSET_SOURCES,
    ASSET_STATUSES,
    ASSET_TRANSCODES,
    DELIVERY_STATES,
    END_REASONS,
    LATENCY_MODES,
    PROTOCOLS,
    SCOPES,
    STATUSES,
    TRANSCODES,
    WEBHOOK_EVENTS,
)
from live.uploads.tus import VERSION as TUS_VERSION

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


_TIME = _string(format="date-time")
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULL_STRING = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _page_of(item: str) -> dict[str, Any]:
    return _object(
        {
            "data": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer", "minimum": 1},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0},
        }
    )


_SETTINGS: dict[str, Any] = {
    "name": _string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
    "record": {"type": "boolean"},
    "latency_mode": {"enum": list(LATENCY_MODES)},
    "transcode": {"enum": list(TRANSCODES)},
    "reconnect_window_s": {"type": "integer", "minimum": 0, "maximum": RECONNECT_WINDOW_MAX},
    "max_duration_s": {"type": "integer", "minimum": 1, "maximum": MAX_DURATION_MAX},
    "srt_passphrase": _nullable(
        _string(minLength=SRT_PASSPHRASE_MIN, maxLength=SRT_PASSPHRASE_MAX)
    ),
}

_SESSION: dict[str, Any] = {
    "id": _string(),
    "livestream_id": _string(),
    "protocol": {"enum": list(PROTOCOLS)},
    "remote_addr": _string(),
    "encoder": _NULL_STRING,
    "started_at": _TIME,
    "ended_at": _NULL_TIME,
    "duration_s": {"type": "number", "minimum": 0},
    "end_reason": _nullable({"enum": list(END_REASONS)}),
    "video": {"type": ["object", "null"]},
    "audio": {"type": ["object", "null"]},
    "bytes_in": {"type": "integer", "minimum": 0},
    "peak_viewers": {"type": "integer", "minimum": 0},
    "total_views": {"type": "integer", "minimum": 0},
    "asset_id": _NULL_STRING,
}

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": _string(),
                    "message": _string(),
                    "param": _NULL_STRING,
                }
            )
        }
    ),
    "LivestreamCreate": {
        "type": "object",
        "properties": _SETTINGS,
        "required": ["name"],
        "additionalProperties": False,
    },
    "LivestreamUpdate": {
        "type": "object",
        "properties": _SETTINGS,
        "additionalProperties": False,
    },
    "BanRequest": {
        "type": "object",
        "properties": {
            "reason": _nullable(_string(maxLength=BAN_REASON_MAX)),
            "until": _nullable(_string(format="date-time", description="must be in the future")),
        },
        "additionalProperties": False,
    },
    "Session": _object(_SESSION),
    "CurrentSession": _object(
        {
            **_SESSION,
            "reconnecting": {"type": "boolean"},
            "ingest_health": {"type": "object"},
            "warnings": {"type": "array", "items": _string()},
        }
    ),
    "Livestream": _object(
        {
            "id": _string(),
            "name": _string(),
            "status": {"enum": list(STATUSES)},
            "stream_key": _NULL_STRING,
            "playback_id": _string(),
            "record": {"type": "boolean"},
            "latency_mode": {"enum": list(LATENCY_MODES)},
            "transcode": {"enum": list(TRANSCODES)},
            "reconnect_window_s": {"type": "integer"},
            "max_duration_s": {"type": "integer"},
            "srt_passphrase": _NULL_STRING,
            "ingest": _object(
                {
                    "rtmp": _NULL_STRING,
                    "rtmps": _NULL_STRING,
                    "srt": _NULL_STRING,
                    "whip": _string(),
                }
            ),
            "playback": _object({"hls": _string(), "player": _string()}),
            "current_session": _nullable(_ref("CurrentSession")),
            "ban": _nullable(
                _object(
                    {"reason": _NULL_STRING, "banned_at": _TIME, "until": _NULL_TIME},
                    required=["reason", "banned_at"],
                )
            ),
            "created_at": _TIME,
            "updated_at": _TIME,
        }
    ),
    "Players": _object(
        {
            "livestream_id": _string(),
            "session_id": _NULL_STRING,
            "current_viewers": {"type": "integer", "minimum": 0},
            "peak_viewers": {"type": "integer", "minimum": 0},
            "total_views": {"type": "integer", "minimum": 0},
            "unique_viewers": {"type": "integer", "minimum": 0},
            "watch_time_s": {"type": "number", "minimum": 0},
            "bytes_out": {"type": "integer", "minimum": 0},
            "renditions": {
                "type": "object",
                "additionalProperties": _object(
                    {"current_viewers": {"type": "integer"}, "bytes_out": {"type": "integer"}}
                ),
            },
            "players": {
                "type": "array",
                "items": _object(
                    {
                        "id": _string(),
                        "ip": _string(),
                        "user_agent": _string(),
                        "started_at": _TIME,
                        "last_seen_at": _TIME,
                        "rendition": _NULL_STRING,
                        "bytes_out": {"type": "integer", "minimum": 0},
                    }
                ),
            },
        }
    ),
    "ApiKeyCreate": {
        "type": "object",
        "properties": {
            "name": _string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
            "scope": {"enum": list(SCOPES)},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "ApiKey": _object(
        {
            "id": _string(),
            "name": _string(),
            "scope": {"enum": list(SCOPES)},
            "created_at": _TIME,
            "last_used_at": _NULL_TIME,
            "key": _string(description="the secret; only in the answer that created the key"),
        },
        required=["id", "name", "scope", "created_at", "last_used_at"],
    ),
    "WebhookCreate": {
        "type": "object",
        "properties": {
            "url": _string(format="uri", maxLength=2048, description="http:// or https://"),
            "events": {
                "type": "array",
                "items": {"enum": list(WEBHOOK_EVENTS)},
                "minItems": 1,
                "description": "default: every event",
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    "Webhook": _object(
        {
            "id": _string(),
            "url": _string(),
            "events": {"type": "array", "items": {"enum": list(WEBHOOK_EVENTS)}},
            "created_at": _TIME,
            "secret": _string(description="signing secret; only in the answer that created it"),
        },
        required=["id", "url", "events", "created_at"],
    ),
    "Event": _object(
        {
            "id": _string(),
            "event": {"enum": list(WEBHOOK_EVENTS)},
            "created_at": _TIME,
            "data": {"type": "object"},
        }
    ),
    "Delivery": _object(
        {
            "id": _string(),
            "webhook_id": _string(),
            "event_id": _string(),
            "event": {"enum": list(WEBHOOK_EVENTS)},
            "payload": _ref("Event"),
            "state": {"enum": list(DELIVERY_STATES)},
            "attempts": {"type": "integer", "minimum": 0},
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": _NULL_STRING,
            "next_attempt_at": _NULL_TIME,
            "created_at": _TIME,
            "delivered_at": _NULL_TIME,
        }
    ),
    "AssetCreate": {
        "type": "object",
        "properties": {
            "name": _string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
            "origin_url": _nullable(
                _string(maxLength=URL_MAX, description="http:// or https://; the server fetches it")
            ),
            "origin_http_headers": _nullable(
                _string(maxLength=HEADERS_MAX, description="'Name: value' lines")
            ),
            "clip_start_s": _nullable({"type": "number", "minimum": 0, "maximum": CLIP_MAX_S}),
            "clip_duration_s": _nullable(
                {"type": "number", "exclusiveMinimum": 0, "maximum": CLIP_MAX_S}
            ),
            "transcode": {"enum": list(ASSET_TRANSCODES)},
            "poster": _nullable(_string(description="a data: URL of a JPEG or PNG image")),
            "size_bytes": _nullable({"type": "integer", "minimum": 1}),
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "Asset": _object(
        {
            "id": _string(),
            "name": _string(),
            "source": {"enum": list(ASSET_SOURCES)},
            "livestream_id": _NULL_STRING,
            "session_id": _NULL_STRING,
            "status": {"enum": list(ASSET_STATUSES)},
            "error": _nullable(
                _object({"code": {"enum": list(ASSET_ERROR_CODES)}, "message": _string()})
            ),
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "duration_s": {"type": ["number", "null"]},
            "size_bytes": {"type": ["integer", "null"]},
            "hls_url": _NULL_STRING,
            "mp4_url": _NULL_STRING,
            "poster_url": _NULL_STRING,
            "sprite_url": _NULL_STRING,
            "thumbnails_vtt_url": _NULL_STRING,
            "origin_url": _NULL_STRING,
            "clip_start_s": {"type": ["number", "null"]},
            "clip_duration_s": {"type": ["number", "null"]},
            "transcode": {"enum": list(ASSET_TRANSCODES)},
            "renditions": {"type": "array", "items": {"type": "object"}},
            "original": {"type": ["object", "null"]},
            "upload": _object(
                {"tus_url": _string(), "put_url": _string(), "expires_at": _NULL_TIME},
                required=["tus_url", "put_url"],
            ),
            "created_at": _TIME,
            "ready_at": _NULL_TIME,
        },
        required=["id", "source", "status", "created_at"],
    ),
}

for _name in ("Livestream", "Session", "ApiKey", "Webhook", "Delivery", "Asset"):
    SCHEMAS[f"{_name}Page"] = _page_of(_name)


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_ERROR = _json(_ref("Error"), "Error (see API.md: code, message, param)")
_ID = {"name": "id", "in": "path", "required": True, "schema": _string()}
_PAGE = [
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000, "default": 1},
    },
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
]
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": _string(pattern=r"^[\x21-\x7e]{1,255}$"),
    "description": "a repeat within 24 h gets the first answer",
}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    body_required: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {**responses, "default": _ERROR},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": _ref(body)}},
        }
    return operation


_NO_CONTENT = {"204": {"description": "Deleted"}}


def _header(name: str, *, required: bool = False, **schema: Any) -> dict[str, Any]:
    description = schema.pop("description", None)
    header = {"name": name, "in": "header", "required": required, "schema": _string(**schema)}
    if description:
        header["description"] = description
    return header


def _tus_answer(description: str, *headers: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {name: {"schema": _string()} for name in ("Tus-Resumable", *headers)},
    }


def _tus_op(
    summary: str, responses: dict[str, Any], params: list[dict[str, Any]]
) -> dict[str, Any]:
    """A tus request: `Tus-Resumable: 1.0.0` (else 412) besides its own headers."""
    version = _header("Tus-Resumable", required=True, enum=[TUS_VERSION])
    return _op(summary, responses, params=[version, *params])


def _paths() -> dict[str, Any]:
    ls = {"200": _json(_ref("Livestream"))}
    return {
        "/livestreams": {
            "post": _op(
                "Create a livestream",
                {"201": _json(_ref("Livestream"), "Created")},
                params=[_IDEMPOTENCY],
                body="LivestreamCreate",
                body_required=True,
            ),
            "get": _op(
                "List livestreams, newest first",
                {"200": _json(_ref("LivestreamPage"))},
                params=[
                    *_PAGE,
                    {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                ],
            ),
        },
        "/livestreams/{id}": {
            "get": _op("A livestream", ls, params=[_ID]),
            "patch": _op("Change settings", ls, params=[_ID], body="LivestreamUpdate"),
            "delete": _op("Delete (disconnects a live publisher)", _NO_CONTENT, params=[_ID]),
        },
        "/livestreams/{id}/ban": {
            "patch": _op(
                "Ban: disconnect now, refuse publishing", ls, params=[_ID], body="BanRequest"
            ),
        },
        "/livestreams/{id}/unban": {"patch": _op("Allow publishing again", ls, params=[_ID])},
        "/livestreams/{id}/disconnect": {
            "post": _op(
                "Close the publisher's connection (no ban)", ls, params=[_ID, _IDEMPOTENCY]
            ),
        },
        "/livestreams/{id}/reset-stream-key": {
            "post": _op(
                "New stream key; the old one stops working", ls, params=[_ID, _IDEMPOTENCY]
            ),
        },
        "/livestreams/{id}/history": {
            "get": _op(
                "Publish sessions, newest first",
                {"200": _json(_ref("SessionPage"))},
                params=[_ID, *_PAGE],
            ),
        },
        "/livestreams/{id}/players": {
            "get": _op("Viewer statistics", {"200": _json(_ref("Players"))}, params=[_ID]),
        },
        "/api-keys": {
            "post": _op(
                "Create an API key (the key is in this answer only)",
                {"201": _json(_ref("ApiKey"), "Created")},
                params=[_IDEMPOTENCY],
                body="ApiKeyCreate",
                body_required=True,
            ),
            "get": _op("List API keys", {"200": _json(_ref("ApiKeyPage"))}, params=_PAGE),
        },
        "/api-keys/{id}": {"delete": _op("Delete an API key", _NO_CONTENT, params=[_ID])},
        "/webhooks": {
            "post": _op(
                "Create a webhook endpoint (the secret is in this answer only)",
                {"201": _json(_ref("Webhook"), "Created")},
                params=[_IDEMPOTENCY],
                body="WebhookCreate",
                body_required=True,
            ),
            "get": _op("List webhook endpoints", {"200": _json(_ref("WebhookPage"))}, params=_PAGE),
        },
        "/webhooks/{id}": {
            "get": _op("A webhook endpoint", {"200": _json(_ref("Webhook"))}, params=[_ID]),
            "delete": _op("Delete an endpoint and its deliveries", _NO_CONTENT, params=[_ID]),
        },
        "/webhooks/deliveries": {
            "get": _op(
                "The delivery log, newest first",
                {"200": _json(_ref("DeliveryPage"))},
                params=[
                    *_PAGE,
                    {"name": "webhook_id", "in": "query", "schema": _string()},
                    {"name": "state", "in": "query", "schema": {"enum": list(DELIVERY_STATES)}},
                ],
            ),
        },
        "/webhooks/deliveries/{id}": {
            "get": _op("One delivery", {"200": _json(_ref("Delivery"))}, params=[_ID]),
        },
        "/webhooks/deliveries/{id}/resend": {
            "post": _op(
                "Send again now",
                {"202": _json(_ref("Delivery"), "Queued")},
                params=[_ID, _IDEMPOTENCY],
            ),
        },
        "/assets": {
            "post": _op(
                "Create an asset to upload a file to, or one the server imports from a URL",
                {"201": _json(_ref("Asset"), "Created")},
                params=[_IDEMPOTENCY],
                body="AssetCreate",
                body_required=True,
            ),
            "get": _op(
                "List assets (recordings, uploads, imports)",
                {"200": _json(_ref("AssetPage"))},
                params=[*_PAGE, {"name": "livestream_id", "in": "query", "schema": _string()}],
            ),
        },
        "/assets/{id}": {
            "get": _op("An asset", {"200": _json(_ref("Asset"))}, params=[_ID]),
            "delete": _op("Delete an asset and its files", _NO_CONTENT, params=[_ID]),
        },
        "/uploads": {
            "post": _tus_op(
                "tus creation: start a resumable upload of an asset's file",
                {"201": _tus_answer("Created", "Location", "Upload-Offset", "Upload-Expires")},
                [
                    _header("Upload-Length", required=True, pattern=r"^[0-9]{1,19}$"),
                    _header(
                        "Upload-Metadata",
                        required=True,
                        description="'key base64value' pairs; asset_id names the asset",
                    ),
                ],
            ),
        },
        "/uploads/{id}": {
            "head": {
                **_tus_op(
                    "tus: where the upload stands (to resume)",
                    {"200": _tus_answer("OK", "Upload-Offset", "Upload-Length", "Upload-Expires")},
                    [_ID],
                ),
                # a HEAD answer has no body, errors included
                "responses": {
                    "200": _tus_answer("OK", "Upload-Offset", "Upload-Length", "Upload-Expires"),
                    "default": {"description": "Error (404 unknown, 410 expired, 412...)"},
                },
            },
            "patch": {
                **_tus_op(
                    "tus: append bytes at Upload-Offset (409 if it is not the upload's)",
                    {"204": _tus_answer("Appended", "Upload-Offset", "Upload-Expires")},
                    [
                        _ID,
                        _header("Upload-Offset", required=True, pattern=r"^[0-9]{1,19}$"),
                        _header("Upload-Checksum", description="ALGO base64digest (sha1...)"),
                    ],
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/offset+octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
            },
            "delete": _tus_op(
                "tus termination: the upload and its bytes go",
                {"204": _tus_answer("Terminated")},
                [_ID],
            ),
        },
        "/assets/{id}/file": {
            "put": {
                **_op(
                    "Upload the asset's whole file as the body (without tus)",
                    {"200": _json(_ref("Asset"))},
                    params=[_ID],
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
            },
        },
        "/openapi.json": {
            "get": {
                **_op("This document", {"200": _json({"type": "object"})}),
                "security": [],  # public: no key needed
            },
        },
    }


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "live REST API",
            "version": "1",
            "description": (
                "Every request carries an API key (X-API-Key or Authorization: Bearer), "
                "except GET /v1/openapi.json, which is public. "
                "Every response carries X-Request-Id and X-RateLimit-Limit, "
                "X-RateLimit-Remaining, X-RateLimit-Reset; a 429 carries Retry-After. "
                "Outside /v1, browser pages use this API: /play/{playback_id} (player; its "
                "public /play/{playback_id}/status says whether the stream is live), "
                "/vod/{asset_id}, /admin and /publish."
            ),
        },
        "servers": [{"url": "/v1"}],
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


_SPEC = spec()


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(_SPEC)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/openapi.json", openapi_json)
