"""Deleting an asset, whatever made it: a recording through the recording service
(which stops its recorder), an upload or import through the VOD jobs (which stop
its job). The API's `ASSET_FILES`.

A deletion is several writes (the job, the record, the files), and the API's
handlers are cancelled when their client hangs up (`handler_cancellation`, which
releases held playlist requests). Cut between two writes, a deletion would leave a
record without its job (an upload stuck short of `ready` for good) or files without
a record (bytes nobody can reach or delete). So once begun, a deletion runs to its
end in a task of its own; the request that asked for it only waits for it. The
server's shutdown waits for the deletions under way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from live.store.models import Asset

log = logging.getLogger(__name__)


class _Deleter(Protocol):
    async def delete(self, asset: Asset) -> None: ...


class AssetDeletion:
    def __init__(self, recordings: _Deleter, vod_jobs: _Deleter) -> None:
        self.recordings = recordings
        self.vod_jobs = vod_jobs
        self._under_way: set[asyncio.Task[None]] = set()

    async def delete(self, asset: Asset) -> None:
        """Delete `asset`; the deletion goes on if the caller is cancelled."""
        owner = self.recordings if asset.source == "recording" else self.vod_jobs
        task = asyncio.create_task(owner.delete(asset), name=f"delete {asset.id}")
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():  # nobody waits for it now: its failure is logged
                task.add_done_callback(_log_failure)
            raise

    async def close(self) -> None:
        """Wait for the deletions under way."""
        if self._under_way:
            await asyncio.wait(list(self._under_way))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("%s failed after its request was gone: %r", task.get_name(), error)
