"""Deleting an asset, whatever made it: a recording through the recording service
(which stops its recorder), an upload or import through the VOD jobs (which stop
its job). The API's `ASSET_FILES`."""

from __future__ import annotations

from typing import Protocol

from live.store.models import Asset


class _Deleter(Protocol):
    async def delete(self, asset: Asset) -> None: ...


class AssetDeletion:
    def __init__(self, recordings: _Deleter, vod_jobs: _Deleter) -> None:
        self.recordings = recordings
        self.vod_jobs = vod_jobs

    async def delete(self, asset: Asset) -> None:
        owner = self.recordings if asset.source == "recording" else self.vod_jobs
        await owner.delete(asset)
