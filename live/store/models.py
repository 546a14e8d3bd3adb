"""The records the store keeps, as plain dataclasses.

They carry no I/O and no HTTP shape: `live/api/serialize.py` turns them into API
objects, and each store implementation maps them to its own storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from live.store.ids import new_id
from live.store.times import utcnow

LatencyMode = Literal["low", "standard"]
Transcode = Literal["passthrough", "auto", "ladder"]
Scope = Literal["admin", "read"]
Status = Literal["idle", "live", "banned"]
IngestProtocol = Literal["rtmp", "rtmps", "srt", "whip"]

LATENCY_MODES: tuple[str, ...] = get_args(LatencyMode)
TRANSCODES: tuple[str, ...] = get_args(Transcode)
SCOPES: tuple[str, ...] = get_args(Scope)
STATUSES: tuple[str, ...] = get_args(Status)
PROTOCOLS: tuple[str, ...] = get_args(IngestProtocol)
END_REASONS: tuple[str, ...] = (
    "publisher_disconnected",
    "banned",
    "deleted",
    "key_reset",
    "kicked",
    "max_duration",
    "timeout",
    "error",
    "server_shutdown",
)

# Livestream fields a user may change (API.md's PATCH list); everything else is
# owned by the server.
LIVESTREAM_SETTINGS: tuple[str, ...] = (
    "name",
    "record",
    "latency_mode",
    "transcode",
    "reconnect_window_s",
    "max_duration_s",
    "srt_passphrase",
)


@dataclass(slots=True, kw_only=True)
class Livestream:
    """A stream a broadcaster publishes to with `stream_key` and viewers watch by
    `playback_id`. `live` is the runtime's "a publisher is on" flag."""

    id: str
    name: str
    stream_key: str = field(repr=False)  # a secret: kept out of logs
    playback_id: str
    record: bool = True
    latency_mode: LatencyMode = "low"
    transcode: Transcode = "auto"
    reconnect_window_s: int = 10
    max_duration_s: int = 43200
    srt_passphrase: str | None = field(default=None, repr=False)
    live: bool = False
    ban_reason: str | None = None
    banned_at: datetime | None = None
    ban_until: datetime | None = None  # None with banned_at set: banned until unbanned
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def is_banned(self, now: datetime | None = None) -> bool:
        """Banned now? A ban whose `ban_until` has passed no longer counts, so
        expiry needs no background job."""
        if self.banned_at is None:
            return False
        if self.ban_until is None:
            return True
        return self.ban_until > (now or utcnow())

    def status(self, now: datetime | None = None) -> Status:
        """The API's status: a ban outranks a live publisher."""
        if self.is_banned(now):
            return "banned"
        return "live" if self.live else "idle"


@dataclass(slots=True, kw_only=True)
class ApiKey:
    """An API key. Only the sha256 of the secret is kept; the plaintext is
    returned once, by `Store.create_api_key`."""

    id: str
    name: str
    scope: Scope
    key_hash: str = field(repr=False)
    created_at: datetime = field(default_factory=utcnow)
    last_used_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class Session:
    """One publish session, written by the runtime, read back as history.

    The defaults let the runtime create one with just the stream and protocol and
    fill in the rest (codecs, byte counts, viewers) as they become known.
    """

    livestream_id: str
    protocol: IngestProtocol
    id: str = field(default_factory=lambda: new_id("ses"))
    remote_addr: str = ""
    encoder: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    end_reason: str | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    bytes_in: int = 0
    peak_viewers: int = 0
    total_views: int = 0
    asset_id: str | None = None

    def duration_s(self, now: datetime | None = None) -> float:
        """Seconds from start to end, or to `now` while the session is open."""
        end = self.ended_at or now or utcnow()
        return max(0.0, (end - self.started_at).total_seconds())


# Session fields the runtime may change after creation.
SESSION_MUTABLE: tuple[str, ...] = (
    "remote_addr",
    "encoder",
    "ended_at",
    "end_reason",
    "video",
    "audio",
    "bytes_in",
    "peak_viewers",
    "total_views",
    "asset_id",
)


# -- assets (recordings, uploads, imports) ----------------------------------------

AssetStatus = Literal["recording", "empty", "pending", "processing", "viewable", "ready", "failed"]
ASSET_STATUSES: tuple[str, ...] = get_args(AssetStatus)
# Where an asset's media came from: a session's recording, a file sent to the API
# (tus or PUT), or a URL the server fetched.
AssetSource = Literal["recording", "upload", "url"]
ASSET_SOURCES: tuple[str, ...] = get_args(AssetSource)
AssetTranscode = Literal["ladder", "passthrough"]
ASSET_TRANSCODES: tuple[str, ...] = get_args(AssetTranscode)
AssetErrorCode = Literal[
    "unsupported_media",
    "no_video_or_audio",
    "file_too_large",
    "origin_unreachable",
    "origin_status",
    "processing_failed",
]
ASSET_ERROR_CODES: tuple[str, ...] = get_args(AssetErrorCode)
_MAX_ERROR_MESSAGE = 500


def asset_error(code: AssetErrorCode, message: str) -> dict[str, str]:
    """The `error` object of a failed asset (API.md): a code clients branch on and a
    sentence for people, cut to a length a dashboard can show."""
    if code not in ASSET_ERROR_CODES:
        raise ValueError(f"unknown asset error code {code!r}")
    return {"code": code, "message": message[:_MAX_ERROR_MESSAGE]}


@dataclass(slots=True, kw_only=True)
class Asset:
    """A video in the library. A recording goes `recording` -> `processing` ->
    `ready`; an upload `empty` -> `pending` -> `processing` -> `viewable` -> `ready`;
    an import starts at `pending`. Any of them may end `failed`, with `error`
    (`asset_error`). Only a recording has a livestream and a session."""

    livestream_id: str | None = None
    session_id: str | None = None
    id: str = field(default_factory=lambda: new_id("ast"))
    source: AssetSource = "recording"
    name: str = ""
    status: AssetStatus = "recording"
    error: dict[str, str] | None = None
    progress: int = 0  # percent of processing done
    duration_s: float = 0.0
    size_bytes: int = 0
    has_poster: bool = False  # no poster for an audio-only recording
    # Asked for at creation (uploads and imports).
    origin_url: str | None = None
    # Sent with the import's fetch; may hold credentials, so the API never shows it.
    origin_http_headers: str | None = None
    clip_start_s: float | None = None
    clip_duration_s: float | None = None
    transcode: AssetTranscode = "ladder"
    declared_size_bytes: int | None = None  # the uploader's `size_bytes`
    upload_expires_at: datetime | None = None
    # Known once processed: the renditions made and what the source file held.
    renditions: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=utcnow)
    ready_at: datetime | None = None


# Asset fields that may change after creation (the rest is fixed when it is made).
ASSET_MUTABLE: tuple[str, ...] = (
    "status",
    "error",
    "progress",
    "duration_s",
    "size_bytes",
    "has_poster",
    "upload_expires_at",
    "renditions",
    "original",
    "ready_at",
)


# -- VOD jobs: the processing of uploads and imports -------------------------------

VodJobState = Literal["queued", "running"]
VOD_JOB_STATES: tuple[str, ...] = get_args(VodJobState)


@dataclass(slots=True, kw_only=True)
class VodJob:
    """The processing an upload or import waits for, one per asset, kept until it
    ends (then removed). A `running` job is held by `node_id` until `lease_until`;
    its node renews that while it works, so a lease that lapses means the node died
    and the job may be claimed again. `attempts` counts claims: a file that kills
    its worker every time is failed rather than retried for ever."""

    asset_id: str
    state: VodJobState = "queued"
    node_id: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    created_at: datetime = field(default_factory=utcnow)


# An import's fetch, queued and leased as a VOD job is (`aggregates/import_jobs.py`):
# the same record, in a queue of its own.
ImportJob = VodJob


# -- webhooks, deliveries, idempotency keys --------------------------------------

WEBHOOK_EVENTS: tuple[str, ...] = (
    "livestream.connected",
    "livestream.live",
    "livestream.disconnected",
    "livestream.idle",
    "livestream.banned",
    "livestream.unbanned",
    "asset.created",
    "asset.viewable",
    "asset.ready",
    "asset.failed",
)
DeliveryState = Literal["pending", "delivered", "failed"]
DELIVERY_STATES: tuple[str, ...] = get_args(DeliveryState)


@dataclass(slots=True, kw_only=True)
class Webhook:
    """An endpoint that receives the events it subscribed to, signed with `secret`
    (kept in plaintext: it is the HMAC key, needed at every delivery)."""

    id: str
    url: str
    events: list[str]
    secret: str = field(repr=False)
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True, kw_only=True)
class Delivery:
    """One event for one endpoint: a row of the outbox and of the delivery log.

    `body` is the exact JSON text sent (and signed), so a retry or a resend sends the
    same bytes with the same event id."""

    id: str
    webhook_id: str
    event_id: str
    event: str
    body: str
    state: DeliveryState = "pending"
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    last_status: int | None = None
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    delivered_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class IdempotentAnswer:
    """The first answer to a POST carrying an Idempotency-Key, replayed for repeats."""

    api_key_id: str
    key: str
    fingerprint: str
    status: int
    body: bytes
    content_type: str
    created_at: datetime = field(default_factory=utcnow)


# -- uploads (a file on its way into an asset) ------------------------------------

UploadKind = Literal["tus", "put"]


@dataclass(slots=True, kw_only=True)
class Upload:
    """A file on its way into an `empty` asset: a tus upload (many PATCHes, over
    any node, across restarts) or one PUT. `write` is the storage's partial write
    (`live.storage.base.PartialWrite` as a dict: key, size, state), kept here so
    that whichever node takes the next piece carries on from it. One writer at a
    time: `holder` while `held_until` has not passed."""

    asset_id: str
    expires_at: datetime
    id: str = field(default_factory=lambda: new_id("upl"))
    kind: UploadKind = "tus"
    length: int | None = None  # tus Upload-Length; a PUT's Content-Length if sent
    offset: int = 0  # bytes received and kept
    metadata: dict[str, str] = field(default_factory=dict)
    write: dict[str, Any] = field(default_factory=dict)
    holder: str | None = None
    held_until: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
