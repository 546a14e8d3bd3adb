"""The LiveControl of a node in a cluster: this node's streams directly, the
others' through the command bus, and the chores that keep the cluster honest
(sharing live sessions, closing what dead nodes left)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import datetime
from typing import Any

from live.api.players import ViewerStats
from live.broadcast.manager import StreamManager
from live.broadcast.recovery import OrphanHandler, close_orphans
from live.cluster.bus import CommandBus
from live.cluster.leases import RedisLeases
from live.control import LiveSession
from live.store.base import Store
from live.store.models import Session

log = logging.getLogger(__name__)

_DATETIMES = ("started_at", "ended_at")


def _session_to_json(live: LiveSession) -> dict[str, Any]:
    fields = dataclasses.asdict(live.session)
    for name in _DATETIMES:
        if fields[name] is not None:
            fields[name] = fields[name].isoformat()
    return {
        "session": fields,
        "reconnecting": live.reconnecting,
        "ingest_health": live.ingest_health,
        "warnings": live.warnings,
    }


def _session_from_json(snapshot: dict[str, Any]) -> LiveSession:
    fields = dict(snapshot["session"])
    for name in _DATETIMES:
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return LiveSession(
        session=Session(**fields),
        reconnecting=bool(snapshot.get("reconnecting")),
        ingest_health=dict(snapshot.get("ingest_health") or {}),
        warnings=list(snapshot.get("warnings") or []),
    )


class ClusterControl:
    """LiveControl for the API of a cluster node."""

    def __init__(
        self,
        manager: StreamManager,
        bus: CommandBus,
        store: Store,
        leases: RedisLeases,
        *,
        viewers: ViewerStats | None = None,
        on_orphan: OrphanHandler | None = None,
        every_s: float = 2.0,
    ) -> None:
        self.viewers = viewers
        self.manager = manager
        self.bus = bus
        self.store = store
        self.leases = leases
        self.on_orphan = on_orphan
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def current_session(self, livestream_id: str) -> LiveSession | None:
        local = self.manager.current_session(livestream_id)
        if local is not None:
            return local
        snapshot = self.bus.snapshot("sessions", livestream_id, max_age_s=3 * self.every_s)
        return _session_from_json(snapshot) if snapshot is not None else None

    def report(self, playback_id: str, *, live: bool) -> dict[str, Any] | None:
        """Viewer figures (the API's ViewerStats), the same on every node: a live
        stream's from the node that runs it (all its viewers reach that node, proxied
        or redirected), shared every few seconds; an idle stream's from its last
        session in the store (None here), which its node wrote when it ended."""
        if not live:
            return None
        runs_here = any(
            b.livestream.playback_id == playback_id for b in self.manager.broadcasts.values()
        )
        if runs_here:
            return self.viewers.report(playback_id, live=True) if self.viewers else None
        return self.bus.snapshot("viewers", playback_id, max_age_s=3 * self.every_s)

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        """End the stream's session here if it runs here, else on the node that runs
        it (every node hears the command; the one that runs the stream acts)."""
        if await self.manager.disconnect(livestream_id, end_reason):
            return True
        await self.bus.disconnect(livestream_id, end_reason)
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._chores(), name="cluster-chores")

    async def _chores(self) -> None:
        """Every `every_s`: share this node's live sessions; close the sessions of
        streams whose node is gone (whichever node gets there first)."""
        while True:
            try:
                sessions = {}
                for livestream_id in list(self.manager.broadcasts):
                    live = self.manager.current_session(livestream_id)
                    if live is not None:
                        sessions[livestream_id] = _session_to_json(live)
                await self.bus.share("sessions", sessions)
                if self.viewers is not None:
                    reports = {}
                    for broadcast in list(self.manager.broadcasts.values()):
                        playback_id = broadcast.livestream.playback_id
                        report = self.viewers.report(playback_id, live=True)
                        if report is not None:
                            reports[playback_id] = report
                    await self.bus.share("viewers", reports)
                await close_orphans(
                    self.store,
                    self.leases,
                    local=set(self.manager.broadcasts),
                    on_orphan=self.on_orphan,
                )
            except Exception as error:
                log.warning("cluster chores failed: %s", error)
            await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
