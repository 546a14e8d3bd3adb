"""A change the API has begun is carried to its end, whether or not its client waits.

The HTTP server cancels a handler when its client hangs up (`handler_cancellation`:
that is how held playlist requests are released). For a change that is several
writes, a cancellation between two of them leaves half of it done: a ban stored
while the publisher goes on streaming (a single node has no audit to catch it),
a livestream kicked but not deleted, an asset's upload job removed but its record
kept (stuck short of `ready` for good) or its record deleted but its files kept,
an `Idempotency-Key` whose change happened but whose answer was never kept, so a
retry does it twice. So a POST, PUT, PATCH or DELETE runs in a task of its own,
from the idempotency check to the answer, and the request only waits for it; a
failure after the client has gone is logged, and the server's shutdown waits for
the changes under way (`ChangesUnderWay.wait`).

Upload routes are left out: they stream their body, and their receiver keeps what
arrived when the client goes (uploads/receiver.py).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from live.api.route_marks import body_is_streamed

log = logging.getLogger(__name__)

CHANGE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ChangesUnderWay:
    """The API's changes in progress, each in a task its request cannot cancel."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[web.StreamResponse]] = set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in CHANGE_METHODS or body_is_streamed(request):
            return await handler(request)
        change = asyncio.create_task(handler(request))
        self._tasks.add(change)
        change.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(change)
        except asyncio.CancelledError:
            if not change.done():
                what = f"{request.method} {request.path}"
                change.add_done_callback(lambda done: _log_failure(what, done))
            raise

    async def wait(self) -> None:
        """Until the changes under way have ended."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))


def _log_failure(what: str, change: asyncio.Task[web.StreamResponse]) -> None:
    if change.cancelled():
        return
    error = change.exception()
    if error is not None and not isinstance(error, web.HTTPException):
        log.error("%s failed after its client had gone: %r", what, error)
