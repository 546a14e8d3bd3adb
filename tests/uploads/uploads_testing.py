"""A /v1 app with the uploads room wired as the server wires it (`make_rig`), over
SQLite and local files by default, with a clock the tests can move and a record of
what was handed on (`on_source_ready`) and announced. The `rig` fixture is in
conftest.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.api import build_api, request_id_middleware
from live.api.assets import UploadSettings
from live.api.ratelimit import RateLimiter
from live.storage import LocalStorage, Storage
from live.store import SqliteStore, Store
from live.store.models import Asset
from live.store.times import utcnow
from live.uploads.imports import ImportSettings
from live.uploads.intake import UploadIntake
from live.uploads.receiver import UploadReceiver
from live.urls import PublicUrls

URLS = PublicUrls("http://live.test:8080", "rtmp://live.test:1935/live", "srt://live.test:9000")
MAX_UPLOAD = 4 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


class Clock:
    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead


@dataclass
class Handed:
    ready: list[Asset] = field(default_factory=list)
    announced: list[tuple[str, Asset]] = field(default_factory=list)

    async def source_ready(self, asset: Asset) -> None:
        self.ready.append(asset)

    async def announce(self, event: str, asset: Asset) -> None:
        self.announced.append((event, asset))


@dataclass
class Rig:
    client: TestClient
    store: Store
    storage: Storage
    receiver: UploadReceiver
    intake: UploadIntake
    handed: Handed
    clock: Clock
    admin: dict[str, str]

    async def new_asset(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/assets", json={"name": "clip", **body}, headers=self.admin
        )
        assert response.status == 201, await response.text()
        return await response.json()

    async def create_upload(self, asset_id: str, length: int, **headers: str) -> Any:
        metadata = f"asset_id {b64(asset_id)},filename {b64('clip.mp4')}"
        return await self.client.post(
            "/v1/uploads",
            headers={**self.admin, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata,
                     **headers},
        )  # fmt: skip

    async def patch(self, location: str, offset: int, data: Any, **headers: str) -> Any:
        return await self.client.patch(
            path_of(location),
            data=data,
            headers={**self.admin, **TUS, "Upload-Offset": str(offset),
                     "Content-Type": "application/offset+octet-stream", **headers},
        )  # fmt: skip

    async def head(self, location: str) -> Any:
        return await self.client.head(path_of(location), headers={**self.admin, **TUS})

    def scratch_files(self) -> list[Path]:
        assert isinstance(self.storage, LocalStorage)
        return [p for p in self.storage.scratch_dir().rglob("*") if p.is_file()]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def path_of(location: str) -> str:
    assert location.startswith(URLS.http_base)
    return location[len(URLS.http_base) :]


async def make_rig(
    tmp_path: Path,
    *,
    rate_limiter: RateLimiter | None = None,
    store: Store | None = None,
    storage: Storage | None = None,
    max_upload: int = MAX_UPLOAD,
) -> AsyncIterator[Rig]:
    """One node's /v1 app; pass a shared `store` and `storage` for a second node."""
    own_store = store is None
    store = store or await SqliteStore.open(tmp_path / "db")
    storage = storage or LocalStorage(tmp_path / "storage")
    handed = Handed()
    clock = Clock()
    intake = UploadIntake(
        store, storage, max_upload_bytes=max_upload,
        imports=ImportSettings(max_bytes=max_upload, timeout_s=5, connect_timeout_s=2),
        on_source_ready=handed.source_ready, announce=handed.announce,
    )  # fmt: skip
    receiver = UploadReceiver(
        store, storage, max_upload_bytes=max_upload, on_received=intake.source_received, clock=clock
    )
    root = web.Application(middlewares=[request_id_middleware])
    api = build_api(
        store=store, control=None, urls=URLS, rate_limiter=rate_limiter,  # type: ignore[arg-type]
        max_body_bytes=4096, asset_intake=intake, asset_events=handed.announce,
        upload_settings=UploadSettings(max_upload_bytes=max_upload, upload_expiry_s=3600),
        uploads=receiver,
    )  # fmt: skip
    root.add_subapp("/v1", api)
    _, key = await store.create_api_key("admin", "admin")
    try:
        async with TestClient(TestServer(root)) as client:
            yield Rig(client, store, storage, receiver, intake, handed, clock, {"X-API-Key": key})
    finally:
        await intake.close()
        if own_store:
            await store.close()
