"""The `rig` fixture: one node's /v1 app with the uploads room (uploads_testing.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from uploads_testing import Rig, make_rig

from live.store import SqliteStore


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await SqliteStore.open(tmp_path / "db")
    try:
        async for made in make_rig(tmp_path, store=store):
            yield made
    finally:
        await store.close()
