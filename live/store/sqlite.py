"""SQLite store: the embedded default, one file under the data dir.

One aiosqlite connection (a worker thread) in autocommit mode; every write is a
single statement, so it is atomic without explicit transactions, and WAL lets
`live keys create` on the command line write while the server runs.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from live.store.base import Store
from live.store.ids import hash_api_key, new_api_key_secret, new_id, new_playback_id, new_stream_key
from live.store.models import (
    ASSET_MUTABLE,
    ASSET_STATUSES,
    DELIVERY_STATES,
    LIVESTREAM_SETTINGS,
    SCOPES,
    SESSION_MUTABLE,
    STATUSES,
    ApiKey,
    Asset,
    AssetStatus,
    Delivery,
    DeliveryState,
    IdempotentAnswer,
    Livestream,
    Scope,
    Session,
    Status,
    Webhook,
)
from live.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from live.store.times import from_storage, to_storage, utcnow

DB_FILENAME = "live.sqlite3"

# `last_used_at` is refreshed at most this often, so that authenticating a burst
# of GETs does not turn each of them into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)

# SQL for "banned now", "live now" and "idle now", with :now bound to storage time.
_BANNED = "(banned_at IS NOT NULL AND (ban_until IS NULL OR ban_until > :now))"
_STATUS_WHERE: dict[str, str] = {
    "banned": _BANNED,
    "live": f"(NOT {_BANNED} AND live = 1)",
    "idle": f"(NOT {_BANNED} AND live = 0)",
}


class SqliteStore(Store):
    """`Store` on one SQLite file. Create with `await SqliteStore.open(path)`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._db = conn

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) the database at `path`, a file or a data dir,
        and bring its schema up to date."""
        path = Path(path)
        if path.is_dir():
            path = path / DB_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await _migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def close(self) -> None:
        await self._db.close()

    # -- helpers ---------------------------------------------------------------

    async def _all(self, sql: str, params: Mapping[str, Any] | Iterable[Any] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, params))

    async def _one(self, sql: str, params: Mapping[str, Any] | Iterable[Any] = ()) -> Any:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Mapping[str, Any] | Iterable[Any] = ()) -> int:
        async with self._db.execute(sql, params) as cursor:
            return cursor.rowcount

    # -- livestreams -----------------------------------------------------------

    async def create_livestream(
        self,
        *,
        name: str,
        record: bool = True,
        latency_mode: str = "low",
        transcode: str = "auto",
        reconnect_window_s: int = 10,
        max_duration_s: int = 43200,
        srt_passphrase: str | None = None,
    ) -> Livestream:
        now = utcnow()
        ls = Livestream(
            id=new_id("ls"),
            name=name,
            stream_key=new_stream_key(),
            playback_id=new_playback_id(),
            record=record,
            latency_mode=latency_mode,  # type: ignore[arg-type]
            transcode=transcode,  # type: ignore[arg-type]
            reconnect_window_s=reconnect_window_s,
            max_duration_s=max_duration_s,
            srt_passphrase=srt_passphrase,
            created_at=now,
            updated_at=now,
        )
        await self._write(
            "INSERT INTO livestreams (id, name, stream_key, playback_id, record, latency_mode,"
            " transcode, reconnect_window_s, max_duration_s, srt_passphrase, live,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                ls.id, ls.name, ls.stream_key, ls.playback_id, int(ls.record), ls.latency_mode,
                ls.transcode, ls.reconnect_window_s, ls.max_duration_s, ls.srt_passphrase,
                to_storage(now), to_storage(now),
            ),
        )  # fmt: skip
        return ls

    async def get_livestream(self, livestream_id: str) -> Livestream | None:
        row = await self._one("SELECT * FROM livestreams WHERE id = ?", (livestream_id,))
        return _livestream(row) if row else None

    async def get_livestream_by_stream_key(self, stream_key: str) -> Livestream | None:
        row = await self._one("SELECT * FROM livestreams WHERE stream_key = ?", (stream_key,))
        return _livestream(row) if row else None

    async def get_livestream_by_playback_id(self, playback_id: str) -> Livestream | None:
        row = await self._one("SELECT * FROM livestreams WHERE playback_id = ?", (playback_id,))
        return _livestream(row) if row else None

    async def list_livestreams(
        self,
        page: int = 1,
        page_size: int = 20,
        status: Status | None = None,
        *,
        now: datetime | None = None,
    ) -> tuple[list[Livestream], int]:
        _check_page(page, page_size)
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        where = _STATUS_WHERE[status] if status else "1"
        params = {
            "now": to_storage(now or utcnow()),
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        total = (await self._one(f"SELECT COUNT(*) FROM livestreams WHERE {where}", params))[0]
        rows = await self._all(
            f"SELECT * FROM livestreams WHERE {where}"
            " ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
            params,
        )
        return [_livestream(r) for r in rows], total

    async def update_livestream(self, livestream_id: str, **changes: Any) -> Livestream | None:
        _check_fields(changes, LIVESTREAM_SETTINGS)
        if not changes:
            return await self.get_livestream(livestream_id)
        values = {k: _encode(v) for k, v in changes.items()}
        values["updated_at"] = to_storage(utcnow())
        return await self._update_livestream(livestream_id, values)

    async def _update_livestream(
        self, livestream_id: str, values: dict[str, Any]
    ) -> Livestream | None:
        # Column names come from the allow-lists above, never from the caller.
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        row = await self._one(
            f"UPDATE livestreams SET {assignments} WHERE id = :_id RETURNING *",
            {**values, "_id": livestream_id},
        )
        return _livestream(row) if row else None

    async def delete_livestream(self, livestream_id: str) -> bool:
        return await self._write("DELETE FROM livestreams WHERE id = ?", (livestream_id,)) > 0

    async def set_live(self, livestream_id: str, live: bool) -> bool:
        count = await self._write(
            "UPDATE livestreams SET live = ? WHERE id = ?", (int(live), livestream_id)
        )
        return count > 0

    async def reset_stream_key(self, livestream_id: str) -> str | None:
        key = new_stream_key()
        updated = await self._update_livestream(
            livestream_id, {"stream_key": key, "updated_at": to_storage(utcnow())}
        )
        return key if updated else None

    async def ban(
        self, livestream_id: str, reason: str | None = None, until: datetime | None = None
    ) -> Livestream | None:
        now = to_storage(utcnow())
        return await self._update_livestream(
            livestream_id,
            {
                "ban_reason": reason,
                "banned_at": now,
                "ban_until": _encode(until),
                "updated_at": now,
            },
        )

    async def unban(self, livestream_id: str) -> Livestream | None:
        return await self._update_livestream(
            livestream_id,
            {
                "ban_reason": None,
                "banned_at": None,
                "ban_until": None,
                "updated_at": to_storage(utcnow()),
            },
        )

    async def lift_expired_bans(self, now: datetime | None = None) -> list[Livestream]:
        stamp = to_storage(now or utcnow())
        async with self._db.execute(
            "UPDATE livestreams SET ban_reason = NULL, banned_at = NULL, ban_until = NULL,"
            " updated_at = :now WHERE banned_at IS NOT NULL AND ban_until IS NOT NULL"
            " AND ban_until <= :now RETURNING *",
            {"now": stamp},
        ) as cursor:
            rows = await cursor.fetchall()
        return [_livestream(row) for row in rows]

    async def next_ban_expiry(self) -> datetime | None:
        row = await self._one(
            "SELECT MIN(ban_until) FROM livestreams"
            " WHERE banned_at IS NOT NULL AND ban_until IS NOT NULL"
        )
        return _time(row[0]) if row else None

    # -- API keys --------------------------------------------------------------

    async def create_api_key(self, name: str, scope: Scope) -> tuple[ApiKey, str]:
        plaintext = new_api_key_secret()
        return await self._insert_api_key(plaintext, name, scope), plaintext

    async def ensure_api_key(self, plaintext: str, name: str, scope: Scope) -> ApiKey:
        existing = await self._api_key_by_hash(hash_api_key(plaintext))
        if existing:
            return existing
        return await self._insert_api_key(plaintext, name, scope, or_ignore=True)

    async def _insert_api_key(
        self, plaintext: str, name: str, scope: Scope, *, or_ignore: bool = False
    ) -> ApiKey:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        key = ApiKey(id=new_id("ak"), name=name, scope=scope, key_hash=hash_api_key(plaintext))
        verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
        await self._write(
            f"{verb} INTO api_keys (id, name, scope, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (key.id, key.name, key.scope, key.key_hash, to_storage(key.created_at)),
        )
        if or_ignore:  # a concurrent ensure may have won the race: answer with its row
            stored = await self._api_key_by_hash(key.key_hash)
            assert stored is not None
            return stored
        return key

    async def _api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self._one("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return _api_key(row) if row else None

    async def verify_api_key(self, plaintext: str) -> ApiKey | None:
        if not plaintext:
            return None
        digest = hash_api_key(plaintext)
        key = await self._api_key_by_hash(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            await self._write(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (to_storage(now), key.id)
            )
            key.last_used_at = now
        return key

    async def get_api_key(self, api_key_id: str) -> ApiKey | None:
        row = await self._one("SELECT * FROM api_keys WHERE id = ?", (api_key_id,))
        return _api_key(row) if row else None

    async def list_api_keys(self, page: int = 1, page_size: int = 20) -> tuple[list[ApiKey], int]:
        _check_page(page, page_size)
        total = (await self._one("SELECT COUNT(*) FROM api_keys"))[0]
        rows = await self._all(
            "SELECT * FROM api_keys ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            (page_size, (page - 1) * page_size),
        )
        return [_api_key(r) for r in rows], total

    async def delete_api_key(self, api_key_id: str) -> bool:
        return await self._write("DELETE FROM api_keys WHERE id = ?", (api_key_id,)) > 0

    async def count_api_keys(self) -> int:
        return (await self._one("SELECT COUNT(*) FROM api_keys"))[0]

    # -- publish sessions --------------------------------------------------------

    async def create_session(self, session: Session) -> Session:
        await self._write(
            "INSERT INTO sessions (id, livestream_id, protocol, remote_addr, encoder,"
            " started_at, ended_at, end_reason, video, audio, bytes_in, peak_viewers,"
            " total_views, asset_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.id, session.livestream_id, session.protocol, session.remote_addr,
                session.encoder, _encode(session.started_at), _encode(session.ended_at),
                session.end_reason, _encode(session.video), _encode(session.audio),
                session.bytes_in, session.peak_viewers, session.total_views, session.asset_id,
            ),
        )  # fmt: skip
        return session

    async def update_session(self, session_id: str, **changes: Any) -> Session | None:
        _check_fields(changes, SESSION_MUTABLE)
        if not changes:
            return await self.get_session(session_id)
        values = {k: _encode(v) for k, v in changes.items()}
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        row = await self._one(
            f"UPDATE sessions SET {assignments} WHERE id = :_id RETURNING *",
            {**values, "_id": session_id},
        )
        return _session(row) if row else None

    async def end_session(
        self, session_id: str, ended_at: datetime, end_reason: str, **final_fields: Any
    ) -> Session | None:
        return await self.update_session(
            session_id, ended_at=ended_at, end_reason=end_reason, **final_fields
        )

    async def get_session(self, session_id: str) -> Session | None:
        row = await self._one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return _session(row) if row else None

    async def list_sessions(
        self, livestream_id: str, page: int = 1, page_size: int = 20
    ) -> tuple[list[Session], int]:
        _check_page(page, page_size)
        total = (
            await self._one(
                "SELECT COUNT(*) FROM sessions WHERE livestream_id = ?", (livestream_id,)
            )
        )[0]
        rows = await self._all(
            "SELECT * FROM sessions WHERE livestream_id = ?"
            " ORDER BY started_at DESC, seq DESC LIMIT ? OFFSET ?",
            (livestream_id, page_size, (page - 1) * page_size),
        )
        return [_session(r) for r in rows], total

    async def list_open_sessions(self) -> list[Session]:
        rows = await self._all("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY seq")
        return [_session(r) for r in rows]

    # -- assets (recordings) ---------------------------------------------------

    async def create_asset(self, asset: Asset) -> Asset:
        await self._write(
            "INSERT INTO assets (id, livestream_id, session_id, status, error, duration_s,"
            " size_bytes, has_poster, created_at, ready_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                asset.id, asset.livestream_id, asset.session_id, asset.status, asset.error,
                asset.duration_s, asset.size_bytes, int(asset.has_poster),
                _encode(asset.created_at), _encode(asset.ready_at),
            ),
        )  # fmt: skip
        return asset

    async def get_asset(self, asset_id: str) -> Asset | None:
        row = await self._one("SELECT * FROM assets WHERE id = ?", (asset_id,))
        return _asset(row) if row else None

    async def list_assets(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        livestream_id: str | None = None,
        statuses: tuple[AssetStatus, ...] | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list[Asset], int]:
        _check_page(page, page_size)
        conditions, params = ["1"], {}
        if livestream_id is not None:
            conditions.append("livestream_id = :livestream_id")
            params["livestream_id"] = livestream_id
        if statuses is not None:
            unknown = set(statuses) - set(ASSET_STATUSES)
            if unknown:
                raise ValueError(f"unknown asset status {sorted(unknown)}")
            names = [f":status{i}" for i in range(len(statuses))]
            conditions.append(f"status IN ({', '.join(names) or 'NULL'})")
            params.update({name[1:]: value for name, value in zip(names, statuses, strict=True)})
        if created_before is not None:
            conditions.append("created_at < :created_before")
            params["created_before"] = to_storage(created_before)
        where = " AND ".join(conditions)
        total = (await self._one(f"SELECT COUNT(*) FROM assets WHERE {where}", params))[0]
        rows = await self._all(
            f"SELECT * FROM assets WHERE {where}"
            " ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
            {**params, "limit": page_size, "offset": (page - 1) * page_size},
        )
        return [_asset(r) for r in rows], total

    async def update_asset(self, asset_id: str, **changes: Any) -> Asset | None:
        _check_fields(changes, ASSET_MUTABLE)
        if "status" in changes and changes["status"] not in ASSET_STATUSES:
            raise ValueError(f"unknown asset status {changes['status']!r}")
        if not changes:
            return await self.get_asset(asset_id)
        values = {k: _encode(v) for k, v in changes.items()}
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        row = await self._one(
            f"UPDATE assets SET {assignments} WHERE id = :_id RETURNING *",
            {**values, "_id": asset_id},
        )
        return _asset(row) if row else None

    async def delete_asset(self, asset_id: str) -> bool:
        # a trigger unlinks the session that named it (migration 4)
        return await self._write("DELETE FROM assets WHERE id = ?", (asset_id,)) > 0

    # -- webhooks, deliveries, idempotency keys, viewer stats ------------------

    async def create_webhook(self, url: str, events: list[str], secret: str) -> Webhook:
        hook = Webhook(id=new_id("wh"), url=url, events=list(events), secret=secret)
        await self._write(
            "INSERT INTO webhooks (id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?)",
            (hook.id, hook.url, json.dumps(hook.events), hook.secret, to_storage(hook.created_at)),
        )
        return hook

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        row = await self._one("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        return _webhook(row) if row else None

    async def list_webhooks(self, page: int = 1, page_size: int = 20) -> tuple[list[Webhook], int]:
        _check_page(page, page_size)
        total = (await self._one("SELECT COUNT(*) FROM webhooks"))[0]
        rows = await self._all(
            "SELECT * FROM webhooks ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            (page_size, (page - 1) * page_size),
        )
        return [_webhook(r) for r in rows], total

    async def delete_webhook(self, webhook_id: str) -> bool:
        # The trigger of migration 3 deletes the endpoint's deliveries in this statement.
        return await self._write("DELETE FROM webhooks WHERE id = ?", (webhook_id,)) > 0

    async def enqueue_event(
        self, event_id: str, event: str, body: str, created_at: datetime
    ) -> int:
        at = to_storage(created_at)
        return await self._write(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, body, state,"
            " attempts, next_attempt_at, created_at)"
            " SELECT 'dlv_' || lower(hex(randomblob(12))), w.id, :event_id, :event, :body,"
            " 'pending', 0, :at, :at FROM webhooks AS w"
            " WHERE EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = :event)"
            " ORDER BY w.seq",
            {"event_id": event_id, "event": event, "body": body, "at": at},
        )

    async def claim_due_deliveries(
        self, webhook_id: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        rows = await self._all(
            "UPDATE webhook_deliveries SET next_attempt_at = :lease WHERE id IN ("
            " SELECT id FROM webhook_deliveries WHERE webhook_id = :hook AND state = 'pending'"
            " AND next_attempt_at <= :now ORDER BY next_attempt_at, seq LIMIT :limit)"
            " RETURNING *",
            {
                "lease": to_storage(lease_until),
                "hook": webhook_id,
                "now": to_storage(now),
                "limit": limit,
            },
        )
        # RETURNING has no order: restore the outbox's (insertion) order.
        return [_delivery(r) for r in sorted(rows, key=lambda r: r["seq"])]

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        state: DeliveryState,
        next_attempt_at: datetime,
        last_status: int | None,
        last_error: str | None,
        delivered_at: datetime | None = None,
    ) -> Delivery | None:
        if state not in DELIVERY_STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        row = await self._one(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, state = ?,"
            " next_attempt_at = ?, last_status = ?, last_error = ?,"
            " delivered_at = COALESCE(?, delivered_at) WHERE id = ? RETURNING *",
            (
                state, to_storage(next_attempt_at), last_status, last_error,
                _encode(delivered_at), delivery_id,
            ),
        )  # fmt: skip
        return _delivery(row) if row else None

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._one("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))
        return _delivery(row) if row else None

    async def list_deliveries(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        webhook_id: str | None = None,
        state: DeliveryState | None = None,
    ) -> tuple[list[Delivery], int]:
        _check_page(page, page_size)
        if state is not None and state not in DELIVERY_STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        where = "(:hook IS NULL OR webhook_id = :hook) AND (:state IS NULL OR state = :state)"
        params = {
            "hook": webhook_id,
            "state": state,
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        total = (await self._one(f"SELECT COUNT(*) FROM webhook_deliveries WHERE {where}", params))[
            0
        ]
        rows = await self._all(
            f"SELECT * FROM webhook_deliveries WHERE {where}"
            " ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
            params,
        )
        return [_delivery(r) for r in rows], total

    async def resend_delivery(self, delivery_id: str, now: datetime) -> Delivery | None:
        row = await self._one(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?"
            " WHERE id = ? RETURNING *",
            (to_storage(now), delivery_id),
        )
        return _delivery(row) if row else None

    async def next_delivery_at(self) -> datetime | None:
        row = await self._one(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending'"
        )
        return _time(row[0]) if row else None

    async def get_idempotent_answer(
        self, api_key_id: str, key: str, not_before: datetime
    ) -> IdempotentAnswer | None:
        row = await self._one(
            "SELECT * FROM idempotency_keys WHERE api_key_id = ? AND key = ? AND created_at >= ?",
            (api_key_id, key, to_storage(not_before)),
        )
        if row is None:
            return None
        return IdempotentAnswer(
            api_key_id=row["api_key_id"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            status=row["status"],
            body=bytes(row["body"]),
            content_type=row["content_type"],
            created_at=from_storage(row["created_at"]),
        )

    async def put_idempotent_answer(self, answer: IdempotentAnswer) -> None:
        await self._write(
            "INSERT OR REPLACE INTO idempotency_keys (api_key_id, key, fingerprint, status,"
            " body, content_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                answer.api_key_id, answer.key, answer.fingerprint, answer.status, answer.body,
                answer.content_type, to_storage(answer.created_at),
            ),
        )  # fmt: skip

    async def purge_idempotent_answers(self, before: datetime) -> int:
        return await self._write(
            "DELETE FROM idempotency_keys WHERE created_at < ?", (to_storage(before),)
        )


async def _migrate(conn: aiosqlite.Connection) -> None:
    """Apply the migrations this file lacks; refuse a file from a newer version."""
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
    current = (row[0] if row else None) or 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this server ({SCHEMA_VERSION})"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[version - 1]
        try:
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"DELETE FROM schema_version; INSERT INTO schema_version VALUES ({version});\n"
                "COMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise


def _check_page(page: int, page_size: int) -> None:
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")


def _check_fields(changes: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValueError(f"fields that cannot be changed: {', '.join(unknown)}")


def _encode(value: Any) -> Any:
    """Python value -> SQLite value."""
    if isinstance(value, datetime):
        return to_storage(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def _time(text: str | None) -> datetime | None:
    return from_storage(text) if text else None


def _livestream(row: sqlite3.Row) -> Livestream:
    return Livestream(
        id=row["id"],
        name=row["name"],
        stream_key=row["stream_key"],
        playback_id=row["playback_id"],
        record=bool(row["record"]),
        latency_mode=row["latency_mode"],
        transcode=row["transcode"],
        reconnect_window_s=row["reconnect_window_s"],
        max_duration_s=row["max_duration_s"],
        srt_passphrase=row["srt_passphrase"],
        live=bool(row["live"]),
        ban_reason=row["ban_reason"],
        banned_at=_time(row["banned_at"]),
        ban_until=_time(row["ban_until"]),
        created_at=from_storage(row["created_at"]),
        updated_at=from_storage(row["updated_at"]),
    )


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scope=row["scope"],
        key_hash=row["key_hash"],
        created_at=from_storage(row["created_at"]),
        last_used_at=_time(row["last_used_at"]),
    )


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        livestream_id=row["livestream_id"],
        protocol=row["protocol"],
        remote_addr=row["remote_addr"],
        encoder=row["encoder"],
        started_at=from_storage(row["started_at"]),
        ended_at=_time(row["ended_at"]),
        end_reason=row["end_reason"],
        video=json.loads(row["video"]) if row["video"] else None,
        audio=json.loads(row["audio"]) if row["audio"] else None,
        bytes_in=row["bytes_in"],
        peak_viewers=row["peak_viewers"],
        total_views=row["total_views"],
        asset_id=row["asset_id"],
    )


def _asset(row: sqlite3.Row) -> Asset:
    return Asset(
        id=row["id"],
        livestream_id=row["livestream_id"],
        session_id=row["session_id"],
        status=row["status"],
        error=row["error"],
        duration_s=row["duration_s"],
        size_bytes=row["size_bytes"],
        has_poster=bool(row["has_poster"]),
        created_at=from_storage(row["created_at"]),
        ready_at=_time(row["ready_at"]),
    )


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=json.loads(row["events"]),
        secret=row["secret"],
        created_at=from_storage(row["created_at"]),
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        event=row["event"],
        body=row["body"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=from_storage(row["next_attempt_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=from_storage(row["created_at"]),
        delivered_at=_time(row["delivered_at"]),
    )
