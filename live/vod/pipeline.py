"""One job on this node: the source in, the child process run, its outputs stored,
the asset's status and events kept in step.

    pending -> processing (progress 0..100) -> viewable (the first pass is stored)
            -> ready (everything stored)       or failed (with `asset_error`)

Each object is stored before the record says it exists (a rendition's playlist
after its segments, `index.m3u8` after the renditions it lists), so a reader never
follows a name to nothing. A job that starts again after a crash or a takeover
finds what the first pass stored (the asset is `viewable`) and does only the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import live
from live.recording import layout
from live.storage.base import Storage
from live.store.base import Store
from live.store.models import Asset, asset_error
from live.store.times import utcnow
from live.vod.child import ChildSpec
from live.vod.hls_output import rendition_files
from live.vod.plan import AUDIO
from live.vod.playlists import AudioEntry, VideoEntry, measure, render_multivariant

log = logging.getLogger(__name__)

Announce = Callable[[str, Asset], Awaitable[None]]
PROGRESS_EVERY_S = 1.0  # at most one store write a second for `progress`
_UPLOADS = 4  # objects stored at once
_NOT_SERVED = (layout.SOURCE, layout.POSTER_SOURCE)
SCRATCH_PREFIX = "vod-"  # a job's scratch directory in the storage's scratch_dir


class AssetGone(Exception):
    """The asset was deleted while its job ran."""


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    rungs: list[tuple[int, int]]
    preset: str = "veryfast"
    priority: str = "idle"


class VodPipeline:
    def __init__(
        self, store: Store, storage: Storage, settings: PipelineSettings, announce: Announce
    ) -> None:
        self.store = store
        self.storage = storage
        self.settings = settings
        self.announce = announce

    async def run(self, asset_id: str) -> None:
        """Process the asset to `ready` or `failed`. Raises AssetGone if it was
        deleted meanwhile; cancelling kills the child and leaves the job to resume."""
        asset = await self.store.get_asset(asset_id)
        if asset is None:
            raise AssetGone(asset_id)
        if asset.status not in ("pending", "processing", "viewable"):
            log.info("asset %s is %s: nothing to process", asset_id, asset.status)
            return
        resuming = asset.status == "viewable" and await self._first_pass_stored(asset)
        if not resuming:
            await self._update(asset_id, status="processing", progress=0, renditions=[])
        prefix = f"{SCRATCH_PREFIX}{asset_id}-"
        scratch = Path(
            await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix, dir=self.storage.scratch_dir())
        )
        try:
            await _Run(self, asset, scratch, resuming).run()
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def _first_pass_stored(self, asset: Asset) -> bool:
        prefix = layout.asset_prefix(asset.id)
        names = [layout.rendition_playlist(f"{r['height']}p") for r in asset.renditions]
        if asset.original and asset.original.get("audio"):
            names.append(layout.rendition_playlist(AUDIO))
        for name in names:
            if not await self.storage.exists(prefix + name):
                return False
        return True

    async def _update(self, asset_id: str, **changes: Any) -> Asset:
        asset = await self.store.update_asset(asset_id, **changes)
        if asset is None:
            raise AssetGone(asset_id)
        return asset

    async def fail(self, asset_id: str, code: str, message: str) -> None:
        log.warning("asset %s failed: %s (%s)", asset_id, message, code)
        asset = await self._update(
            asset_id,
            status="failed",
            error=asset_error(code, message),  # type: ignore[arg-type]
        )
        # what was made of it is useless; the file as received is kept
        prefix = layout.asset_prefix(asset_id)
        leftovers = [
            info.key for info in await self.storage.list(prefix)
            if info.key[len(prefix) :] not in _NOT_SERVED
        ]  # fmt: skip
        await self.storage.delete_many(leftovers)
        await self.announce("asset.failed", asset)


class _Run:
    """One run of the child for one asset, and what its events lead to."""

    def __init__(self, pipeline: VodPipeline, asset: Asset, scratch: Path, resuming: bool):
        self.p = pipeline
        self.asset = asset
        self.prefix = layout.asset_prefix(asset.id)
        self.scratch = scratch
        self.out_dir = scratch / "out"
        self.resuming = resuming
        self.viewable = resuming
        self.audio_stored = resuming and bool(asset.original and asset.original.get("audio"))
        self.audio_codec: str | None = None
        self.renditions: list[dict[str, Any]] = list(asset.renditions) if resuming else []
        self.progress_at = 0.0
        self.outcome = False  # the child said finished or failed

    async def run(self) -> None:
        await asyncio.to_thread(self.out_dir.mkdir)
        source = await self._local(layout.SOURCE)
        if source is None:
            await self.p.fail(self.asset.id, "processing_failed", "the source file is missing")
            return
        poster = await self._local(layout.POSTER_SOURCE)
        spec = ChildSpec(
            source=str(source),
            size_bytes=await self.p.storage.size(self.prefix + layout.SOURCE) or 0,
            out_dir=str(self.out_dir),
            rungs=self.p.settings.rungs,
            transcode=self.asset.transcode,
            clip_start_s=self.asset.clip_start_s,
            clip_duration_s=self.asset.clip_duration_s,
            poster_source=str(poster) if poster else None,
            preset=self.p.settings.preset,
            priority=self.p.settings.priority,
            first_pass_done=self.resuming,
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "live.vod.child",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=_child_env(),
        )  # fmt: skip
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(spec.to_json().encode())
            child.stdin.close()
            async for line in child.stdout:
                await self._on_event(json.loads(line))
            code = await child.wait()
        finally:
            if child.returncode is None:  # cancelled or failed here: the child goes too
                child.kill()
                await child.wait()
        if not self.outcome:
            await self.p.fail(
                self.asset.id, "processing_failed",
                f"the processing worker ended without a result (exit status {code})",
            )  # fmt: skip

    async def _local(self, name: str) -> Path | None:
        """The stored object as a local file: itself on local storage, else a copy."""
        key = self.prefix + name
        path = self.p.storage.local_path(key)
        if path is not None:
            return path if await self.p.storage.exists(key) else None
        if not await self.p.storage.exists(key):
            return None
        copy = self.scratch / name
        handle = await asyncio.to_thread(open, copy, "wb")
        try:
            async with contextlib.aclosing(self.p.storage.stream(key)) as chunks:
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return copy

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "probed":
            await self.p._update(self.asset.id, original=event["original"])
            self.asset.original = event["original"]
        elif kind == "progress":
            now = time.monotonic()
            if now - self.progress_at >= PROGRESS_EVERY_S:
                self.progress_at = now
                await self.p._update(self.asset.id, progress=int(event["percent"]))
        elif kind == "renditions":
            await self._store_renditions(event)
        elif kind == "finished":
            self.outcome = True
            await self._finish(event)
        elif kind == "failed":
            self.outcome = True
            await self.p.fail(self.asset.id, event["code"], event["message"])

    async def _store_renditions(self, event: dict[str, Any]) -> None:
        names = [r["name"] for r in event["renditions"]]
        audio = event.get("audio")
        if audio is not None:
            self.audio_codec = audio["codec"]
            if not self.audio_stored:
                names.append(AUDIO)
        pass_dir = self.out_dir / event["dir"]
        for name in names:
            await self._store(pass_dir, rendition_files(pass_dir, name))
        self.audio_stored = self.audio_stored or audio is not None
        # by height: a pass run again after a restart replaces what it made before
        known = {r["height"]: r for r in self.renditions}
        for made in event["renditions"]:
            known[made["height"]] = {key: made[key] for key in ("width", "height", "codec")}
        self.renditions = sorted(known.values(), key=lambda r: r["height"], reverse=True)
        entries = await self._write_multivariant()
        by_height = {entry.height: entry for entry in entries}
        self.renditions = [
            {**r, "bitrate_kbps": round(by_height[r["height"]].rate.average_bps / 1000)}
            for r in self.renditions
        ]
        changes: dict[str, Any] = {"renditions": self.renditions}
        if not self.viewable:
            changes["status"] = "viewable"
        asset = await self.p._update(self.asset.id, **changes)
        if not self.viewable:
            self.viewable = True
            log.info("asset %s viewable: %s", self.asset.id, ", ".join(names))
            await self.p.announce("asset.viewable", asset)

    async def _write_multivariant(self) -> list[VideoEntry]:
        sizes = {
            info.key[len(self.prefix) :]: info.size
            for info in await self.p.storage.list(self.prefix)
        }
        videos = []
        for rendition in self.renditions:
            name = f"{rendition['height']}p"
            rate = await self._measure(name, sizes)
            videos.append(
                VideoEntry(name, rendition["width"], rendition["height"], rendition["codec"], rate)
            )
        audio = None
        if self.audio_stored:
            codec = self.audio_codec or "mp4a.40.2"
            audio = AudioEntry(codec, await self._measure(AUDIO, sizes))
        text = render_multivariant(videos, audio)
        await layout.put(self.p.storage, self.prefix, layout.PLAYLIST, text.encode())
        return videos

    async def _measure(self, name: str, sizes: dict[str, int]):
        playlist = await self.p.storage.get(self.prefix + layout.rendition_playlist(name))
        return measure(playlist.decode(), sizes)

    async def _finish(self, event: dict[str, Any]) -> None:
        await self._store(self.out_dir, event["files"])
        size = sum(
            info.size for info in await self.p.storage.list(self.prefix)
            if info.key[len(self.prefix) :] not in _NOT_SERVED
        )  # fmt: skip
        asset = await self.p._update(
            self.asset.id,
            status="ready",
            error=None,
            progress=100,
            duration_s=float(event["duration_s"]),
            size_bytes=size,
            has_poster=layout.POSTER in event["files"],
            ready_at=utcnow(),
        )
        log.info("asset %s ready: %.1f s, %d bytes", asset.id, asset.duration_s, size)
        await self.p.announce("asset.ready", asset)

    async def _store(self, directory: Path, names: list[str]) -> None:
        """Store these files of `directory`, in order where it matters:
        all but the last at once (a few at a time), then the last."""
        slots = asyncio.Semaphore(_UPLOADS)

        async def store(name: str) -> None:
            async with slots:
                await self.p.storage.put_file(
                    self.prefix + name, directory / name, content_type=layout.content_type(name)
                )

        *body, last = names
        await asyncio.gather(*(store(name) for name in body))
        await store(last)


def _child_env() -> dict[str, str]:
    """The child imports this very `live` package, wherever it was imported from."""
    import os

    env = dict(os.environ)
    root = str(Path(live.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
