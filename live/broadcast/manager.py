"""The live streams of this node: who may publish, and each session's life.

Every ingest (RTMP, SRT, WHIP) asks `begin_publish` with the stream key and gets a
Publisher or a PublishRefused; from then on it only pushes tracks and packets. The
key is checked by `authorise`, behind the guard against guessing: an address that
sent wrong keys (or SRT passphrases) is slowed, then refused for a while. The
manager applies the one-publisher-per-key rule (with takeover of a silent
publisher; across nodes through the stream's lease), keeps a session open through
the reconnect window, writes sessions to the store, starts the stream's outputs
(HLS packager, recorder) and emits the stream's events. It is also the LiveControl
the API uses to disconnect a publisher on this node.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from live.attempts import AttemptGuard, GuardSettings
from live.broadcast import events
from live.broadcast.bitrate import BitrateLimit
from live.broadcast.broadcast import Broadcast
from live.broadcast.events import NoStreamEvents, StreamEvents
from live.broadcast.health import IngestHealth
from live.broadcast.leases import (
    Holder,
    Lease,
    LeaseBusy,
    LeaseUnavailable,
    LocalLeases,
    StreamLeases,
)
from live.broadcast.publisher import Publisher, StopConnection
from live.broadcast.recovery import OrphanHandler, close_displaced
from live.control import LiveSession
from live.limits import LimitHits
from live.media.packet import MediaPacket, TrackInfo
from live.store.base import Store
from live.store.errors import StaleFence, StoreUnavailable
from live.store.ids import same_secret
from live.store.models import Livestream, Session
from live.store.times import utcnow

log = logging.getLogger(__name__)

RefusalReason = Literal["unknown_key", "banned", "busy", "limit", "rate_limited"]
Takeover = Literal["stale", "always", "never"]
ViewerTotals = Callable[[Broadcast], dict[str, int]]
# Ends a publisher may come back from within the reconnect window.
_RECOVERABLE = ("publisher_disconnected", "timeout", "error")


class PublishRefused(Exception):
    """The publish is not allowed; `reason` decides the protocol's answer."""

    def __init__(
        self, reason: RefusalReason, message: str, *, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        # rate_limited: when the address may try again.
        self.retry_after_s = retry_after_s


class Outputs(Protocol):
    """Starts a Broadcast's packager and consumers, and retires them at its end
    (`live.broadcast.output.StreamOutputs`; tests of the session's life pass none)."""

    def start(self, broadcast: Broadcast, on_part: Callable[[], None]) -> None: ...

    async def retire(self, broadcast: Broadcast) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionRules:
    publisher_takeover: Takeover = "stale"
    stale_after_s: float = 2.0
    segment_target: float = 1.0
    # How often a live session's figures (media, bytes, viewers) are written to the
    # store, so history and other nodes see them while it goes on.
    checkpoint_every_s: float = 5.0
    # Cluster mode: re-read each live stream from the store this often, so a ban,
    # delete or key reset whose message to this node was lost still ends it.
    audit_every_s: float | None = None
    # After taking a stream over from another node: how long its old node has to end
    # its own session (it learns at its next lease renewal) before this one does.
    displaced_grace_s: float = 3.0
    # Live streams this node takes at once (None: any number), and the most a
    # publisher may send (None: any bitrate).
    max_publishers: int | None = None
    bitrate_limit: BitrateLimit | None = None


class StreamManager:
    """All live streams of this node, and the LiveControl behind the API."""

    def __init__(
        self,
        store: Store,
        outputs: Outputs | None,
        rules: SessionRules,
        *,
        leases: StreamLeases | None = None,
        events: StreamEvents | None = None,
        viewer_totals: ViewerTotals | None = None,
        live_viewer_totals: ViewerTotals | None = None,
        on_orphan: OrphanHandler | None = None,
        limit_hits: LimitHits | None = None,
        guard: AttemptGuard | None = None,
    ) -> None:
        self.store = store
        self.outputs = outputs
        self.rules = rules
        self.leases: StreamLeases = leases or LocalLeases()
        self.events: StreamEvents = events or NoStreamEvents()
        # The session's viewer figures (peak_viewers, total_views) at its end, and
        # the same figures while it goes on (read-only), for current_session.
        self.viewer_totals = viewer_totals
        self.live_viewer_totals = live_viewer_totals
        # A session of a dead node that this one closed (its recording is finalised).
        self.on_orphan = on_orphan
        self.broadcasts: dict[str, Broadcast] = {}
        self.refusals: dict[str, int] = {
            "unknown_key": 0,
            "banned": 0,
            "busy": 0,
            "limit": 0,
            "rate_limited": 0,
        }
        # Refusals and disconnections by the limit that caused them (/metrics).
        self.limit_hits = limit_hits or LimitHits()
        # Failed keys and passphrases per client address (per node: see attempts.py),
        # and the attempts it slowed or refused, by (protocol, "slowed" | "refused").
        self.guard = guard or AttemptGuard(GuardSettings())
        self.throttled: collections.Counter[tuple[str, str]] = collections.Counter()
        self._leases: dict[str, Lease] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None
        self.closing = False

    # -- publishing ------------------------------------------------------------------

    async def authorise(self, stream_key: str, *, protocol: str, remote_addr: str) -> Livestream:
        """The livestream `stream_key` publishes to, or PublishRefused (unknown_key,
        rate_limited, busy). An address with recent failures waits before its key is
        looked at, whether the key is right or not, and one with too many is refused
        without a look; a wrong key counts as a failure."""
        verdict = self.guard.check(remote_addr)
        if not verdict.refused and verdict.delay_s > 0:
            self.throttled[(protocol, "slowed")] += 1
            await asyncio.sleep(verdict.delay_s)
            verdict = self.guard.check(remote_addr)  # parallel attempts may have failed
        if verdict.refused:
            self.throttled[(protocol, "refused")] += 1
            raise self._refuse(
                "rate_limited",
                protocol,
                remote_addr,
                f"too many failed attempts; try again in {verdict.retry_after_whole_s} s",
                retry_after_s=verdict.retry_after_whole_s,
            )
        livestream = None
        if stream_key:
            try:
                livestream = await self.store.get_livestream_by_stream_key(stream_key)
            except StoreUnavailable:
                raise self._refuse(
                    "busy",
                    protocol,
                    remote_addr,
                    "the server's state is unreachable; try again in a moment",
                ) from None
        if livestream is None:
            self.secret_failed(remote_addr)
            raise self._refuse("unknown_key", protocol, remote_addr, "no livestream has this key")
        return livestream

    def secret_failed(self, remote_addr: str) -> None:
        """A wrong secret from `remote_addr` that the manager did not see itself (an
        SRT passphrase): it counts against the address like a wrong key."""
        self.guard.failed(remote_addr)

    async def begin_publish(
        self,
        stream_key: str,
        *,
        protocol: str,
        remote_addr: str,
        stop: StopConnection,
        livestream: Livestream | None = None,
    ) -> Publisher:
        """`livestream`: the one `authorise` already returned for this key (WHIP and
        SRT need it before the publish begins); otherwise the key is authorised here."""
        if livestream is None:
            livestream = await self.authorise(
                stream_key, protocol=protocol, remote_addr=remote_addr
            )
        if livestream.is_banned():
            raise self._refuse("banned", protocol, remote_addr, "this livestream is banned")
        if self.closing:
            raise self._refuse("busy", protocol, remote_addr, "the server is shutting down")
        async with self._lock:
            broadcast = self.broadcasts.get(livestream.id)
            if broadcast is None:
                self._check_room(protocol, remote_addr)
            continuing = False
            if broadcast is not None and broadcast.publisher is not None:
                current = broadcast.publisher
                if not self._may_take_over(current.is_stale(self.rules.stale_after_s)):
                    raise self._refuse("busy", protocol, remote_addr, "another publisher is live")
                log.info(
                    "stream %s: %s publisher from %s takes over from %s",
                    livestream.id,
                    protocol,
                    remote_addr,
                    current.remote_addr,
                )
                broadcast.publisher = None
                current.stop("publisher_disconnected")
                await self._emit(events.DISCONNECTED, broadcast)
                continuing = livestream.reconnect_window_s > 0
                if not continuing:
                    await self._close_session(broadcast, "publisher_disconnected")
                broadcast.hub.publisher_changed()
            elif broadcast is not None:  # back within the reconnect window
                continuing = broadcast.session is not None
                broadcast.hub.publisher_changed()
            if broadcast is None:
                await self._take_lease(livestream.id, protocol, remote_addr)
                broadcast = self._start_broadcast(livestream)
            publisher = Publisher(
                broadcast, protocol, remote_addr, stop,
                bitrate_limit=self.rules.bitrate_limit, limit_hits=self.limit_hits,
            )  # fmt: skip
            broadcast.publisher = publisher
            broadcast.livestream = livestream
            broadcast.reconnecting = False
            broadcast.cancel_timer("reconnect")
            if not continuing:
                await self._open_session(broadcast, publisher)
        log.info("stream %s: %s publish from %s accepted", livestream.id, protocol, remote_addr)
        await self._emit(events.CONNECTED, broadcast)
        return publisher

    def _check_room(self, protocol: str, remote_addr: str) -> None:
        """A new live stream needs room under `max_publishers`; a stream already
        live here (a takeover, a return within the reconnect window) does not."""
        limit = self.rules.max_publishers
        if limit is not None and len(self.broadcasts) >= limit:
            message = f"this server takes at most {limit} live streams at once; try again later"
            self.limit_hits.hit(
                "max_publishers", f"refused {protocol} publish from {remote_addr}: {message}"
            )
            self.refusals["limit"] += 1
            raise PublishRefused("limit", message)

    def _may_take_over(self, stale: bool) -> bool:
        rule = self.rules.publisher_takeover
        if rule == "always":
            return True
        if rule == "never":
            return False
        return stale

    def _may_take_over_holder(self, holder: Holder) -> bool:
        return self._may_take_over(time.time() - holder.active_at >= self.rules.stale_after_s)

    async def _take_lease(self, livestream_id: str, protocol: str, remote_addr: str) -> None:
        try:
            lease = await self.leases.acquire(
                livestream_id,
                may_take_over=self._may_take_over_holder,
                on_lost=lambda reason: self._lease_lost(livestream_id, reason),
            )
        except LeaseBusy as busy:
            raise self._refuse(
                "busy",
                protocol,
                remote_addr,
                f"another publisher is live on node {busy.holder.node_id}",
            ) from None
        except LeaseUnavailable:
            raise self._refuse(
                "busy",
                protocol,
                remote_addr,
                "the cluster's state is unreachable; publishing resumes when it is back",
            ) from None
        lease.active_at = time.time()
        self._leases[livestream_id] = lease
        if lease.displaced is not None:
            self.spawn(self._close_displaced(livestream_id))

    async def _close_displaced(self, livestream_id: str) -> None:
        await asyncio.sleep(self.rules.displaced_grace_s)
        broadcast = self.broadcasts.get(livestream_id)
        keep = broadcast.session.id if broadcast and broadcast.session else None
        try:
            await close_displaced(self.store, livestream_id, keep, self.on_orphan)
        except Exception:
            log.exception("stream %s: closing the displaced node's session failed", livestream_id)

    async def _lease_lost(self, livestream_id: str, reason: str) -> None:
        """Another node took the stream over (or this one could not keep it): stop
        publishing here. The session is the new holder's to continue or end."""
        self._leases.pop(livestream_id, None)
        log.warning("stream %s: lease lost (%s); ending here", livestream_id, reason)
        await self.disconnect(livestream_id, "publisher_disconnected")

    def _refuse(
        self,
        reason: RefusalReason,
        protocol: str,
        remote_addr: str,
        message: str,
        *,
        retry_after_s: int | None = None,
    ) -> PublishRefused:
        self.refusals[reason] += 1
        log.warning("refused %s publish from %s: %s (%s)", protocol, remote_addr, reason, message)
        return PublishRefused(reason, message, retry_after_s=retry_after_s)

    def _start_broadcast(self, livestream: Livestream) -> Broadcast:
        broadcast = Broadcast(self, livestream, self.rules.segment_target)
        if self.outputs is not None:
            self.outputs.start(broadcast, on_part=lambda: self._on_part(broadcast))
        self.broadcasts[livestream.id] = broadcast
        self._ensure_keeper()
        return broadcast

    def _on_part(self, broadcast: Broadcast) -> None:
        if not broadcast.announced_live and broadcast.session is not None:
            broadcast.announced_live = True
            self.spawn(self._emit(events.LIVE, broadcast))

    async def _open_session(self, broadcast: Broadcast, publisher: Publisher) -> None:
        session = Session(
            livestream_id=broadcast.livestream.id,
            protocol=publisher.protocol,  # type: ignore[arg-type]
            remote_addr=publisher.remote_addr,
        )
        broadcast.session = session
        broadcast.media_ended_at = None
        broadcast.announced_live = broadcast.packager is not None and (
            broadcast.packager.parts_produced > 0
        )
        broadcast.health = IngestHealth(self.rules.segment_target)
        await self.store.create_session(session, fence=self._fence(broadcast))
        await self.store.set_live(broadcast.livestream.id, True)
        if broadcast.announced_live:  # a new session on output that is already playing
            self.spawn(self._emit(events.LIVE, broadcast))
        max_duration = broadcast.livestream.max_duration_s
        if max_duration and max_duration > 0:
            session_id = session.id

            async def expire() -> None:
                if broadcast.session is not None and broadcast.session.id == session_id:
                    await self.disconnect(broadcast.livestream.id, "max_duration")

            broadcast.start_timer("max_duration", max_duration, expire)

    def _session_figures(self, broadcast: Broadcast, *, final: bool = False) -> dict[str, Any]:
        """What the session measured so far: media, bytes in, viewers (`final`: the
        figures that close it)."""
        video, audio = broadcast.media_description()
        figures: dict[str, Any] = {
            "video": video,
            "audio": audio,
            "bytes_in": broadcast.health.bytes_in,
        }
        totals = self.viewer_totals if final else self.live_viewer_totals
        if totals is not None:
            figures.update(totals(broadcast))
        return figures

    async def _close_session(
        self, broadcast: Broadcast, reason: str, ended_at: datetime | None = None
    ) -> None:
        """Write the end of the current session (the broadcast may carry on)."""
        session = broadcast.session
        if session is None:
            return
        broadcast.cancel_timer("max_duration")
        final = self._session_figures(broadcast, final=True)
        fence = self._fence(broadcast)
        broadcast.session = None
        ended_at = ended_at or utcnow()

        async def write() -> Session | None:
            return await self.store.end_session(
                session.id,
                ended_at=ended_at,
                end_reason=reason,
                encoder=session.encoder,
                fence=fence,
                **final,
            )

        ended = await self._write_soon(write, f"the end of session {session.id}")
        await self._emit(events.IDLE, broadcast, ended or session)

    def _fence(self, broadcast: Broadcast) -> int | None:
        lease = self._leases.get(broadcast.livestream.id)
        return lease.token if lease is not None else None

    async def _write_soon(self, write: Callable[[], Coroutine[Any, Any, Any]], what: str) -> Any:
        """Write now; while the store is unreachable, keep retrying in the background
        (a session's end must not be lost to a Redis restart). A write another owner
        fenced off is dropped: the stream's newer owner decides."""
        try:
            return await write()
        except StaleFence:
            log.warning("%s: a newer owner holds the stream; not written", what)
            return None
        except StoreUnavailable:
            log.warning("%s: the store is unreachable; retrying in the background", what)

        async def retry() -> None:
            delay = 0.5
            for _ in range(600):  # bounded: about an hour at the longest delay
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                try:
                    await write()
                    log.info("%s: written after the store came back", what)
                    return
                except StaleFence:
                    return
                except StoreUnavailable:
                    continue
            log.error("%s: given up; the store stayed unreachable", what)

        self.spawn(retry())
        return None

    async def publisher_gone(self, broadcast: Broadcast, publisher: Publisher, reason: str) -> None:
        """The publisher's connection ended by itself: wait for it within the
        reconnect window, or end the session now."""
        async with self._lock:
            if broadcast.publisher is not publisher:
                return
            broadcast.publisher = None
            publisher.attached = False
            broadcast.media_ended_at = utcnow()
        await self._emit(events.DISCONNECTED, broadcast)
        window = broadcast.livestream.reconnect_window_s
        if window > 0 and reason in _RECOVERABLE and not self.closing:
            broadcast.reconnecting = True
            log.info(
                "stream %s: publisher left (%s); waiting %d s for it to come back",
                broadcast.livestream.id,
                reason,
                window,
            )

            async def expire() -> None:
                if broadcast.publisher is None:
                    # The wait is not broadcast time: the session ended when media
                    # stopped flowing.
                    await self.end_session(broadcast, reason, ended_at=broadcast.media_ended_at)

            broadcast.start_timer("reconnect", window, expire)
            return
        await self.end_session(broadcast, reason)

    async def end_left(self, publisher: Publisher, reason: str) -> None:
        """The publisher left on purpose (WHIP's DELETE) and has already gone: end the
        session now instead of waiting out the reconnect window."""
        broadcast = self.broadcasts.get(publisher.livestream_id)
        if broadcast is publisher.broadcast and broadcast.publisher is None:
            await self.end_session(broadcast, reason, ended_at=broadcast.media_ended_at)

    async def note_encoder(self, broadcast: Broadcast, encoder: str) -> None:
        if broadcast.session is not None:
            with contextlib.suppress(StoreUnavailable, StaleFence):
                await self.store.update_session(
                    broadcast.session.id, encoder=encoder, fence=self._fence(broadcast)
                )

    async def end_session(
        self, broadcast: Broadcast, reason: str, ended_at: datetime | None = None
    ) -> None:
        """The session is over: end it and the stream's output (ENDLIST)."""
        async with self._lock:
            if self.broadcasts.get(broadcast.livestream.id) is not broadcast:
                return
            del self.broadcasts[broadcast.livestream.id]
            publisher, broadcast.publisher = broadcast.publisher, None
            if publisher is not None:
                publisher.attached = False
            broadcast.reconnecting = False
            broadcast.cancel_timers()
        await self._close_session(broadcast, reason, ended_at)
        broadcast.hub.end(reason)
        livestream_id = broadcast.livestream.id
        await self._write_soon(
            lambda: self.store.set_live(livestream_id, False), f"stream {livestream_id} idle"
        )
        lease = self._leases.pop(broadcast.livestream.id, None)
        if lease is not None:
            with contextlib.suppress(Exception):
                await self.leases.release(lease)
        log.info("stream %s: session ended (%s)", broadcast.livestream.id, reason)
        if self.outputs is not None:
            self.spawn(self.outputs.retire(broadcast))

    async def _emit(self, event: str, broadcast: Broadcast, session: Session | None = None) -> None:
        livestream = broadcast.livestream
        live = (
            self.current_session(livestream.id)
            if self.broadcasts.get(livestream.id) is broadcast
            else None
        )
        session = session or broadcast.session

        async def write() -> None:
            await self.events.emit(event, livestream, session, live)

        try:
            await self._write_soon(write, f"stream {livestream.id}: event {event}")
        except Exception:
            log.exception("stream %s: could not record event %s", livestream.id, event)

    def latest_keyframe(self, playback_id: str) -> tuple[TrackInfo, MediaPacket] | None:
        """The video track and newest keyframe of the live stream with this playback id."""
        for broadcast in self.broadcasts.values():
            if broadcast.livestream.playback_id == playback_id:
                return broadcast.latest_keyframe()
        return None

    # -- while streams are live ------------------------------------------------------

    def _ensure_keeper(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep(), name="stream-keeper")

    async def _keep(self) -> None:
        """While any stream is live here: refresh each lease's activity, write each
        session's figures every `checkpoint_every_s`, and in a cluster audit each
        stream against the store. Stops by itself when nothing is live."""
        tick = 1.0
        since_checkpoint = since_audit = 0.0
        while self.broadcasts:
            await asyncio.sleep(tick)
            since_checkpoint += tick
            since_audit += tick
            for livestream_id, broadcast in list(self.broadcasts.items()):
                lease = self._leases.get(livestream_id)
                publisher = broadcast.publisher
                if lease is not None and publisher is not None:
                    last = publisher.last_media_at or publisher.connected_at
                    self.leases.touch(lease, time.time() - (time.monotonic() - last))
            try:
                if since_checkpoint >= self.rules.checkpoint_every_s:
                    since_checkpoint = 0.0
                    await self.checkpoint()
                audit = self.rules.audit_every_s
                if audit is not None and since_audit >= audit:
                    since_audit = 0.0
                    await self.audit()
            except Exception:
                log.exception("checking the live streams failed; trying again")

    async def checkpoint(self) -> None:
        """Write each live session's figures to the store."""
        for broadcast in list(self.broadcasts.values()):
            session = broadcast.session
            if session is not None:
                with contextlib.suppress(StaleFence):
                    await self.store.update_session(
                        session.id,
                        fence=self._fence(broadcast),
                        **self._session_figures(broadcast),
                    )

    async def audit(self) -> None:
        """End what the store says must not be live: a ban, a delete or a new stream
        key that reached this node only through the store."""
        for livestream_id, broadcast in list(self.broadcasts.items()):
            livestream = await self.store.get_livestream(livestream_id)
            if livestream is None:
                reason = "deleted"
            elif livestream.is_banned():
                reason = "banned"
            elif not same_secret(livestream.stream_key, broadcast.livestream.stream_key):
                reason = "key_reset"
            else:
                continue
            log.info("stream %s: the store says %s; ending it here", livestream_id, reason)
            await self.disconnect(livestream_id, reason)

    # -- LiveControl -----------------------------------------------------------------

    def current_session(self, livestream_id: str) -> LiveSession | None:
        broadcast = self.broadcasts.get(livestream_id)
        if broadcast is None or broadcast.session is None:
            return None
        session = broadcast.session
        for name, value in self._session_figures(broadcast).items():
            setattr(session, name, value)
        return LiveSession(
            session=session,
            reconnecting=broadcast.reconnecting,
            ingest_health=broadcast.health.report(time.monotonic()),
            warnings=broadcast.health.warnings(),
        )

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        """End the stream's session now (ban, delete, key reset, kick, max duration),
        closing its publisher if one is connected."""
        broadcast = self.broadcasts.get(livestream_id)
        if broadcast is None:
            return False
        publisher = broadcast.publisher
        if publisher is not None:
            # Detach first: the closed connection's own end (publisher_disconnected),
            # which may run while the event is emitted, must not decide the reason.
            broadcast.publisher = None
            publisher.stop(end_reason)
            await self._emit(events.DISCONNECTED, broadcast)
        await self.end_session(broadcast, end_reason)
        return True

    # -- life of the process -----------------------------------------------------------

    async def shutdown(self) -> None:
        """End every session (`server_shutdown`) and let the consumers finish."""
        self.closing = True
        tasks = [t for b in self.broadcasts.values() for t in b.tasks]
        for livestream_id in list(self.broadcasts):
            await self.disconnect(livestream_id, "server_shutdown")
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._keeper is not None:
            self._keeper.cancel()
        for task in list(self._background):
            task.cancel()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
