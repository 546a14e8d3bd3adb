"""The store's interface, one abstract class per aggregate; `live.store.base.Store`
is their union. A component that needs only one part may name only that part."""

from live.store.aggregates.api_keys import ApiKeyStore
from live.store.aggregates.assets import AssetStore
from live.store.aggregates.idempotency import IdempotencyStore
from live.store.aggregates.import_jobs import ImportJobStore
from live.store.aggregates.livestreams import LivestreamStore
from live.store.aggregates.sessions import SessionStore
from live.store.aggregates.uploads import UploadStore
from live.store.aggregates.vod_jobs import VodJobStore
from live.store.aggregates.webhooks import WebhookStore

__all__ = [
    "ApiKeyStore",
    "AssetStore",
    "IdempotencyStore",
    "ImportJobStore",
    "LivestreamStore",
    "SessionStore",
    "UploadStore",
    "VodJobStore",
    "WebhookStore",
]
