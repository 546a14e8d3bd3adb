"""Closing what a dead process left open, and only that.

A node that starts (and, in a cluster, every node from time to time) looks for
sessions still open in the store whose stream no live node holds: their node
crashed or was killed. Exactly one node claims each such orphan, ends it with
`error` and hands it on (the recording service finalises its asset). Sessions of
streams that a live peer holds are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from live.broadcast.leases import StreamLeases
from live.store.base import Store
from live.store.models import Session
from live.store.times import utcnow

log = logging.getLogger(__name__)

OrphanHandler = Callable[[Session], Awaitable[None]]


async def close_orphans(
    store: Store,
    leases: StreamLeases,
    *,
    local: set[str] = frozenset(),  # type: ignore[assignment]
    on_orphan: OrphanHandler | None = None,
) -> list[Session]:
    """End every open session whose stream is held by no node (nor by this one:
    `local` is the ids this node runs). Returns the sessions this call ended."""
    ended: list[Session] = []
    for session in await store.list_open_sessions():
        livestream_id = session.livestream_id
        if livestream_id in local or await leases.held_anywhere(livestream_id):
            continue
        if not await leases.claim_orphan(session.id):
            continue
        ended.append(await _close(store, session, "its node is gone", on_orphan))
        await store.set_live(livestream_id, False)
    await _clear_stale_live_flags(store, leases, local)
    return ended


async def close_displaced(
    store: Store,
    livestream_id: str,
    keep_session_id: str | None,
    on_orphan: OrphanHandler | None = None,
) -> list[Session]:
    """After this node took a stream over from another: end the stream's open
    sessions other than its own (their node died, or failed to end them itself)."""
    ended: list[Session] = []
    for session in await store.list_open_sessions():
        if session.livestream_id != livestream_id or session.id == keep_session_id:
            continue
        ended.append(await _close(store, session, "its node was taken over", on_orphan))
    return ended


async def _close(
    store: Store, session: Session, why: str, on_orphan: OrphanHandler | None
) -> Session:
    """End a session its node left with `error`, then hand it on (its recording)."""
    closed = await store.end_session(session.id, ended_at=utcnow(), end_reason="error") or session
    log.warning("session %s of %s: %s; closed", session.id, session.livestream_id, why)
    if on_orphan is not None:
        try:
            await on_orphan(closed)
        except Exception:
            log.exception("finishing session %s failed", session.id)
    return closed


async def _clear_stale_live_flags(store: Store, leases: StreamLeases, local: set[str]) -> None:
    """`live` flags left without a holder (a crash between the flag and the session)."""
    page = 1
    while page < 10_000:  # bounded: each round reads 100 flags
        items, total = await store.list_livestreams(page=page, page_size=100, status="live")
        if not items:
            return
        for livestream in items:
            if livestream.id not in local and not await leases.held_anywhere(livestream.id):
                await store.set_live(livestream.id, False)
        if page * 100 >= total:
            return
        page += 1
