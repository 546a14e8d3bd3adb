"""What each backend's leased job queue does (sqlite/job_queue.py on a table,
redis/job_queue.py under a key namespace): the VOD jobs and the imports are each
one such queue, and their store parts only say which."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from live.store.models import VodJob


class JobQueue(Protocol):
    async def enqueue(self, asset_id: str) -> VodJob: ...

    async def claim(self, node_id: str, now: datetime, lease_until: datetime) -> VodJob | None: ...

    async def renew(self, asset_id: str, node_id: str, lease_until: datetime) -> bool: ...

    async def release(self, asset_id: str, node_id: str) -> bool: ...

    async def requeue(self) -> int: ...

    async def remove(self, asset_id: str, node_id: str | None = None) -> bool: ...

    async def get(self, asset_id: str) -> VodJob | None: ...

    async def list(self) -> list[VodJob]: ...
