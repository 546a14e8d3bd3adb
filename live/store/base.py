"""The store interface: all persistent state goes through here.

`Store` is the union of one abstract class per aggregate (`live/store/aggregates/`):
livestreams (with stream keys and bans), API keys, publish sessions, assets,
webhooks (with their deliveries), idempotency answers, the VOD job queue, the
imports being fetched and uploads in progress.
Viewer stats are counted in memory (`live/stats/`) and written into the session (`peak_viewers`,
`total_views`) when it ends: no store write per HLS request.

Implementations: `SqliteStore` (embedded default, one file under the data dir) and
`RedisStore` (cluster mode, shared by every node). Both pass the same suite,
`tests/store/test_store_contract.py`, so the rules below are part of the contract:

- `get_*` return None for an unknown id; mutators return the updated record, or
  None (or False) when the id is unknown. They never raise for "not found".
- Unknown field names given to `update_*` raise ValueError: a typo must not be
  silently dropped.
- Lists are newest first (by `created_at`, `started_at` for sessions, ties broken by
  insertion order) and return `(items, total)` where `total` ignores paging.
- Datetimes in and out are timezone-aware UTC.
- A write that several parts of the state must agree on (fan-out of an event, a
  claim, lifting bans, a cascading delete, a key reset) is one atomic write: two
  nodes racing never both win, and no reader sees half of it.
"""

from __future__ import annotations

from live.store.aggregates import (
    ApiKeyStore,
    AssetStore,
    IdempotencyStore,
    ImportJobStore,
    LivestreamStore,
    SessionStore,
    UploadStore,
    VodJobStore,
    WebhookStore,
)


class Store(
    LivestreamStore,
    ApiKeyStore,
    SessionStore,
    AssetStore,
    WebhookStore,
    IdempotencyStore,
    VodJobStore,
    ImportJobStore,
    UploadStore,
):
    """Async access to all persistent state."""

    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
