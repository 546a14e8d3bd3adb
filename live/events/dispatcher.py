"""The webhook dispatcher: sends what the outbox holds, retries with backoff.

One loop claims due deliveries per endpoint (a lease in the store, so a crash
means a resend, never a loss) and hands them to per-delivery tasks. Each endpoint
has its own small concurrency limit, so a slow or dead endpoint only delays
itself; nothing here runs on the path of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from live.events.signing import SIGNATURE_HEADER, sign
from live.events.wake import sleep_unless_woken
from live.store.base import Store
from live.store.models import Delivery, Webhook
from live.store.times import utcnow

log = logging.getLogger(__name__)

BACKLOG_LOOK_S = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: base, 2 x base, 4 x base ... capped at `max_s`, with a
    little jitter, for `retry_for_s` after the event; then the delivery fails."""

    base_s: float = 10.0
    max_s: float = 900.0
    retry_for_s: float = 86400.0
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        """Wait before the next attempt, after `attempts` failed ones (>= 1)."""
        raw = min(self.max_s, self.base_s * 2 ** min(attempts - 1, 40))
        return raw * (1 + random.uniform(-self.jitter, self.jitter))

    def next_attempt(self, delivery: Delivery, attempts: int, now: datetime) -> datetime | None:
        """When to try again, or None once the retry period is over."""
        at = now + timedelta(seconds=self.delay(attempts))
        if at > delivery.created_at + timedelta(seconds=self.retry_for_s):
            return None
        return at


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    timeout_s: float = 10.0  # no 2xx within this: a failed attempt
    per_endpoint: int = 4  # deliveries in flight to one endpoint
    # Longest sleep between looks at the outbox. Events written here wake the loop and
    # retries set its timer, so this is only a safety net (a clock jump, a row written
    # by another process); polling each second was most of an idle server's CPU.
    poll_s: float = 15.0
    user_agent: str = "live-webhooks/1"


class WebhookDispatcher:
    def __init__(
        self,
        store: Store,
        *,
        policy: RetryPolicy | None = None,
        settings: DispatchSettings | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.settings = settings or DispatchSettings()
        self.outcomes: Counter[str] = Counter()  # delivered, failed_attempt, gave_up
        self._wake = asyncio.Event()
        self._in_flight: dict[str, set[asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """Something is due now: look at the outbox without waiting for the poll."""
        self._wake.set()

    def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            headers={"User-Agent": self.settings.user_agent},
        )
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Stop sending. Deliveries in flight keep their lease and are sent again
        after a restart (at least once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tasks = [t for group in self._in_flight.values() for t in group]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    @property
    def in_flight(self) -> int:
        return sum(len(group) for group in self._in_flight.values())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
                sleep = await self._sleep_time()
            except Exception:
                log.exception("webhook dispatcher: cannot read the outbox")
                sleep = self.settings.poll_s
            await sleep_unless_woken(self._wake, sleep)

    async def _sleep_time(self) -> float:
        due = await self.store.next_delivery_at()
        if due is None:
            return self.settings.poll_s
        left = (due - utcnow()).total_seconds()
        if left <= 0:
            # run_once has just started all it could: what is still due waits for an
            # endpoint at its limit, and the delivery that frees a slot wakes the loop.
            # Another endpoint's retry may fall due meanwhile, and the earliest due
            # time hides it: look again after BACKLOG_LOOK_S, but never spin.
            return min(self.settings.poll_s, BACKLOG_LOOK_S)
        return min(self.settings.poll_s, left)

    async def run_once(self) -> int:
        """Claim and start what is due, per endpoint within its limit. Returns how
        many deliveries were started."""
        started = 0
        page = 1
        while True:
            hooks, total = await self.store.list_webhooks(page, 100)
            for hook in hooks:
                started += await self._start_due(hook)
            if page * 100 >= total:
                return started
            page += 1

    async def _start_due(self, hook: Webhook) -> int:
        group = self._in_flight.setdefault(hook.id, set())
        free = self.settings.per_endpoint - len(group)
        if free <= 0:
            return 0
        now = utcnow()
        # The lease outlasts one attempt, so a delivery stuck behind a dead process
        # is taken again soon after the process is gone.
        lease = now + timedelta(seconds=self.settings.timeout_s * 2 + 5)
        due = await self.store.claim_due_deliveries(hook.id, now, lease, free)
        for delivery in due:
            task = asyncio.create_task(self._deliver(hook, delivery), name=f"deliver-{delivery.id}")
            group.add(task)
            task.add_done_callback(group.discard)
        return len(due)

    async def _deliver(self, hook: Webhook, delivery: Delivery) -> None:
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(hook.secret, int(time.time()), body),
            "Live-Event-Id": delivery.event_id,
            "Live-Delivery-Id": delivery.id,
        }
        status: int | None = None
        error: str | None = None
        assert self._http is not None
        try:
            async with self._http.post(
                hook.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                await response.content.read(64 * 1024)  # drain a little; ignore the rest
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # a bad URL and the like: a failed attempt, not a crash
            error = f"{type(exc).__name__}: {exc}"[:500]
        await self._record(delivery, status, error)
        self.wake()  # a slot of this endpoint is free: take the next due delivery

    async def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        now = utcnow()
        if status is not None and 200 <= status < 300:
            self.outcomes["delivered"] += 1
            await self.store.record_attempt(
                delivery.id,
                state="delivered",
                next_attempt_at=now,
                last_status=status,
                last_error=None,
                delivered_at=now,
            )
            return
        if error is None:
            error = f"HTTP {status}"
        attempts = delivery.attempts + 1
        retry_at = self.policy.next_attempt(delivery, attempts, now)
        if retry_at is None:
            self.outcomes["gave_up"] += 1
            log.warning("webhook delivery %s failed for good: %s", delivery.id, error)
            await self.store.record_attempt(
                delivery.id, state="failed", next_attempt_at=now, last_status=status,
                last_error=error,
            )  # fmt: skip
            return
        self.outcomes["failed_attempt"] += 1
        log.info("webhook delivery %s attempt %d failed (%s); next at %s",
                 delivery.id, attempts, error, retry_at.isoformat())  # fmt: skip
        await self.store.record_attempt(
            delivery.id, state="pending", next_attempt_at=retry_at, last_status=status,
            last_error=error,
        )  # fmt: skip
