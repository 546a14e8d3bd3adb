"""API keys: only a hash of each secret is kept."""

from __future__ import annotations

import abc
from datetime import timedelta

from live.store.models import ApiKey, Scope

# `last_used_at` is refreshed at most this often, so that authenticating a burst
# of GETs does not turn each of them into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyStore(abc.ABC):
    """Keys are looked up by the hash of their secret, in one step."""

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
