"""SQLite part of the store: webhook endpoints and their deliveries (the outbox)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from live.store.aggregates.webhooks import WebhookStore
from live.store.checks import check_delivery_state, check_page
from live.store.ids import new_id
from live.store.models import Delivery, DeliveryState, Webhook
from live.store.sqlite.connection import SqliteConnection, encode, time_or_none
from live.store.times import from_storage, to_storage


class SqliteWebhooks(SqliteConnection, WebhookStore):
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
        check_page(page, page_size)
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
        check_delivery_state(state)
        row = await self._one(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, state = ?,"
            " next_attempt_at = ?, last_status = ?, last_error = ?,"
            " delivered_at = COALESCE(?, delivered_at) WHERE id = ? RETURNING *",
            (
                state, to_storage(next_attempt_at), last_status, last_error,
                encode(delivered_at), delivery_id,
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
        check_page(page, page_size)
        check_delivery_state(state)
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
        return time_or_none(row[0]) if row else None


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
        delivered_at=time_or_none(row["delivered_at"]),
    )
