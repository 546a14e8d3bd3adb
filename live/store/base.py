"""The store interface: all persistent state goes through here.

Implementations: `SqliteStore` (embedded default, one file under the data dir).
A Redis implementation for cluster mode must pass the same suite,
`tests/store/test_store_contract.py`, so the rules below are part of the contract:

- `get_*` return None for an unknown id; mutators return the updated record, or
  None (or False) when the id is unknown. They never raise for "not found".
- Unknown field names given to `update_*` raise ValueError: a typo must not be
  silently dropped.
- Lists are newest first (by `created_at`, `started_at` for sessions, ties broken by
  insertion order) and return `(items, total)` where `total` ignores paging.
- Datetimes in and out are timezone-aware UTC.

Coming next, each with its own group of methods here (not implemented yet):
- assets: create/get/list(livestream_id)/update status/delete (recordings)
- webhooks: endpoints with their signing secret, create/get/list/delete
- deliveries: the durable webhook outbox: enqueue, claim due, mark attempt, list, resend
- viewer stats: per-session players and counters behind `/players`
- idempotency keys: (key, api key id) -> stored first answer, expiring after 24 h
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from live.store.models import (
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


class Store(abc.ABC):
    """Async access to livestreams, API keys and publish sessions."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections. The store is unusable afterwards."""

    # -- livestreams --------------------------------------------------------

    @abc.abstractmethod
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
        """Create a livestream with a fresh id, stream key and playback id."""

    @abc.abstractmethod
    async def get_livestream(self, livestream_id: str) -> Livestream | None: ...

    @abc.abstractmethod
    async def get_livestream_by_stream_key(self, stream_key: str) -> Livestream | None:
        """The ingest's authorisation lookup."""

    @abc.abstractmethod
    async def get_livestream_by_playback_id(self, playback_id: str) -> Livestream | None:
        """The playback side's lookup."""

    @abc.abstractmethod
    async def list_livestreams(
        self,
        page: int = 1,
        page_size: int = 20,
        status: Status | None = None,
        *,
        now: datetime | None = None,
    ) -> tuple[list[Livestream], int]:
        """Newest first. `status` filters as `Livestream.status(now)` would."""

    @abc.abstractmethod
    async def update_livestream(self, livestream_id: str, **changes: Any) -> Livestream | None:
        """Change settings (`models.LIVESTREAM_SETTINGS`); bumps `updated_at`."""

    @abc.abstractmethod
    async def delete_livestream(self, livestream_id: str) -> bool:
        """Delete the livestream. Its sessions stay: assets refer to them."""

    @abc.abstractmethod
    async def set_live(self, livestream_id: str, live: bool) -> bool:
        """Runtime flag "a publisher is on". Not a settings change: `updated_at`
        is left alone. False if the id is unknown."""

    @abc.abstractmethod
    async def reset_stream_key(self, livestream_id: str) -> str | None:
        """Replace the stream key; the old one stops matching at once."""

    @abc.abstractmethod
    async def ban(
        self, livestream_id: str, reason: str | None = None, until: datetime | None = None
    ) -> Livestream | None:
        """Ban now (again, if already banned), until `until` or, if None, for good."""

    @abc.abstractmethod
    async def unban(self, livestream_id: str) -> Livestream | None: ...

    @abc.abstractmethod
    async def lift_expired_bans(self, now: datetime | None = None) -> list[Livestream]:
        """Clear every ban whose `until` has passed; return the livestreams this call
        cleared (each exactly once, even with several callers racing)."""

    @abc.abstractmethod
    async def next_ban_expiry(self) -> datetime | None:
        """The earliest `until` of the bans that have one (passed or not), or None."""

    # -- API keys ------------------------------------------------------------

    @abc.abstractmethod
    async def create_api_key(self, name: str, scope: Scope) -> tuple[ApiKey, str]:
        """A new key and its plaintext ("lk_..."), which is not kept anywhere."""

    @abc.abstractmethod
    async def ensure_api_key(self, plaintext: str, name: str, scope: Scope) -> ApiKey:
        """Make a configured key (LIVE_API_KEY) valid. Idempotent: an existing key
        with this secret is returned unchanged."""

    @abc.abstractmethod
    async def verify_api_key(self, plaintext: str) -> ApiKey | None:
        """The key with this secret, or None. Records `last_used_at` (coarsely, so
        that reads do not turn into a write per request)."""

    @abc.abstractmethod
    async def get_api_key(self, api_key_id: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def list_api_keys(self, page: int = 1, page_size: int = 20) -> tuple[list[ApiKey], int]:
        """Newest first."""

    @abc.abstractmethod
    async def delete_api_key(self, api_key_id: str) -> bool: ...

    @abc.abstractmethod
    async def count_api_keys(self) -> int:
        """Used at start-up to decide whether to create a first admin key."""

    # -- publish sessions ------------------------------------------------------

    @abc.abstractmethod
    async def create_session(self, session: Session) -> Session: ...

    @abc.abstractmethod
    async def update_session(self, session_id: str, **changes: Any) -> Session | None:
        """Change `models.SESSION_MUTABLE` fields (codecs, counters, asset id)."""

    @abc.abstractmethod
    async def end_session(
        self, session_id: str, ended_at: datetime, end_reason: str, **final_fields: Any
    ) -> Session | None:
        """Close the session, with its final counters in the same write."""

    @abc.abstractmethod
    async def get_session(self, session_id: str) -> Session | None: ...

    @abc.abstractmethod
    async def list_sessions(
        self, livestream_id: str, page: int = 1, page_size: int = 20
    ) -> tuple[list[Session], int]:
        """A livestream's sessions, newest first."""

    @abc.abstractmethod
    async def list_open_sessions(self) -> list[Session]:
        """Sessions without `ended_at`: after a crash, start-up closes these."""

    # -- assets (recordings) ---------------------------------------------------

    @abc.abstractmethod
    async def create_asset(self, asset: Asset) -> Asset: ...

    @abc.abstractmethod
    async def get_asset(self, asset_id: str) -> Asset | None: ...

    @abc.abstractmethod
    async def list_assets(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        livestream_id: str | None = None,
        statuses: tuple[AssetStatus, ...] | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list[Asset], int]:
        """Newest first, filtered by livestream, by status (start-up finds the
        unfinished ones) and by age (retention)."""

    @abc.abstractmethod
    async def update_asset(self, asset_id: str, **changes: Any) -> Asset | None:
        """Change `models.ASSET_MUTABLE` fields (status, error, duration, size)."""

    @abc.abstractmethod
    async def delete_asset(self, asset_id: str) -> bool: ...

    # -- webhooks, deliveries, idempotency keys, viewer stats ------------------
    # Viewer stats are counted in memory (live/stats/) and written into the session
    # (`peak_viewers`, `total_views`) when it ends: no store write per HLS request.

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
        `lease_until` in the same write, so no other sender (or this one after a
        crash) takes them before the lease runs out: at least once, rarely twice."""

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

    @abc.abstractmethod
    async def get_idempotent_answer(
        self, api_key_id: str, key: str, not_before: datetime
    ) -> IdempotentAnswer | None:
        """The stored answer for this key, unless it was stored before `not_before`."""

    @abc.abstractmethod
    async def put_idempotent_answer(self, answer: IdempotentAnswer) -> None:
        """Store (or replace) the answer for (api_key_id, key)."""

    @abc.abstractmethod
    async def purge_idempotent_answers(self, before: datetime) -> int:
        """Forget answers stored before `before`."""
