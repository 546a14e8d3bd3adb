"""Webhook endpoints and their deliveries: the durable outbox and the delivery log."""

from __future__ import annotations

import abc
from datetime import datetime

from live.store.models import Delivery, DeliveryState, Webhook


class WebhookStore(abc.ABC):
    """Endpoints, the events fanned out to them, and the leases senders take."""

    @abc.abstractmethod
    async def create_webhook(self, url: str, events: list[str], secret: str) -> Webhook: ...

    @abc.abstractmethod
    async def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    @abc.abstractmethod
    async def list_webhooks(self, page: int = 1, page_size: int = 20) -> tuple[list[Webhook], int]:
        """Newest first."""

    @abc.abstractmethod
    async def delete_webhook(self, webhook_id: str) -> bool:
        """Delete the endpoint, its pending deliveries and its log, atomically."""

    @abc.abstractmethod
    async def enqueue_event(
        self, event_id: str, event: str, body: str, created_at: datetime
    ) -> int:
        """The outbox write: one pending delivery of `body` for every endpoint
        subscribed to `event`, due at once, all in one atomic write. Returns how many."""

    @abc.abstractmethod
    async def claim_due_deliveries(
        self, webhook_id: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Pending deliveries of one endpoint due by `now`, oldest first, pushed to
        `lease_until` in the same write, so no other sender (on this node or another)
        takes them before the lease runs out, and a dead sender's claim is taken
        over once it has: at least once, rarely twice."""

    @abc.abstractmethod
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
        """Count one attempt and its outcome."""

    @abc.abstractmethod
    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    @abc.abstractmethod
    async def list_deliveries(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        webhook_id: str | None = None,
        state: DeliveryState | None = None,
    ) -> tuple[list[Delivery], int]:
        """The delivery log, newest first."""

    @abc.abstractmethod
    async def resend_delivery(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make the delivery pending and due at `now` (whatever its state)."""

    @abc.abstractmethod
    async def next_delivery_at(self) -> datetime | None:
        """When the earliest pending delivery is due, or None."""
