"""Redis part of the store: webhook endpoints and their deliveries (the outbox).

`wh:event:<event>` lists the endpoints subscribed to an event, so the fan-out reads
only those. An endpoint's pending deliveries wait in `dlv:due:<id>` by next attempt;
claiming pushes them to the end of the lease in the same script, so two senders
never hold the same delivery, and a dead sender's claim comes due again when the
lease runs out. `dlv:pending` holds every pending delivery for `next_delivery_at`.
The log is also indexed by state (`dlv:state:<state>`, `dlv:wh:<id>:<state>`), so a
filtered page reads only the page.
"""

from __future__ import annotations

from datetime import datetime

from live.store.aggregates.webhooks import WebhookStore
from live.store.checks import check_delivery_state, check_page
from live.store.ids import new_id
from live.store.models import Delivery, DeliveryState, Webhook
from live.store.redis.codec import from_hash, pairs_to_dict
from live.store.redis.connection import RedisConnection, changes_args
from live.store.redis.keys import from_micros, to_micros
from live.store.redis.lua import script
from live.store.times import to_storage

# Delete an endpoint, its subscriptions, its pending deliveries and its log.
# ARGV: prefix, id.
_DELETE = script("""
local id = ARGV[2]
local key = P .. 'wh:' .. id
local f = redis.call('HMGET', key, 'created_at', '_seq', 'events')
if not f[1] then return 0 end
local member = ordered(f[1], f[2], id)
redis.call('ZREM', P .. 'wh:index', member)
for _, event in ipairs(cjson.decode(f[3])) do
    redis.call('ZREM', P .. 'wh:event:' .. event, member)
end
local log = P .. 'dlv:wh:' .. id
for _, entry in ipairs(redis.call('ZRANGE', log, 0, -1)) do
    local delivery = id_of(entry)
    local state = redis.call('HGET', P .. 'dlv:' .. delivery, 'state')
    redis.call('ZREM', P .. 'dlv:index', entry)
    redis.call('ZREM', P .. 'dlv:state:' .. state, entry)
    redis.call('ZREM', P .. 'dlv:pending', delivery)
    redis.call('DEL', P .. 'dlv:' .. delivery)
end
redis.call('DEL', log, P .. 'dlv:due:' .. id, key)
for _, state in ipairs({'pending', 'delivered', 'failed'}) do
    redis.call('DEL', log .. ':' .. state)
end
return 1
""")

# Fan an event out: one pending delivery, due at once, per subscribed endpoint, in
# subscription order. ARGV: prefix, event id, event, body, created_at stamp, its µs.
# Answers how many.
_ENQUEUE = script("""
local event_id, event, body, at, at_us = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local count = 0
for _, entry in ipairs(redis.call('ZRANGE', P .. 'wh:event:' .. event, 0, -1)) do
    local hook = id_of(entry)
    local seq = redis.call('INCR', P .. 'seq')
    local digest = redis.sha1hex(P .. event_id .. '|' .. hook .. '|' .. seq)
    local id = 'dlv_' .. string.sub(digest, 1, 24)
    redis.call('HSET', P .. 'dlv:' .. id, '_seq', seq, 'id', id, 'webhook_id', hook,
        'event_id', event_id, 'event', event, 'body', body, 'state', 'pending',
        'attempts', 0, 'next_attempt_at', at, 'created_at', at)
    local member = ordered(at, seq, id)
    redis.call('ZADD', P .. 'dlv:index', 0, member)
    redis.call('ZADD', P .. 'dlv:wh:' .. hook, 0, member)
    redis.call('ZADD', P .. 'dlv:state:pending', 0, member)
    redis.call('ZADD', P .. 'dlv:wh:' .. hook .. ':pending', 0, member)
    redis.call('ZADD', P .. 'dlv:due:' .. hook, at_us, due_member(seq, id))
    redis.call('ZADD', P .. 'dlv:pending', at_us, id)
    count = count + 1
end
return count
""")

# Lease an endpoint's due deliveries: the oldest `limit` due by now get their next
# attempt moved to the lease's end. ARGV: prefix, endpoint id, now in µs, lease end
# stamp, its µs, limit. Answers the claimed records.
_CLAIM = script("""
local due = P .. 'dlv:due:' .. ARGV[2]
local claimed = {}
local entries = redis.call('ZRANGE', due, '-inf', ARGV[3], 'BYSCORE', 'LIMIT', 0, ARGV[6])
for _, entry in ipairs(entries) do
    local id = id_of(entry)
    local key = P .. 'dlv:' .. id
    redis.call('HSET', key, 'next_attempt_at', ARGV[4])
    redis.call('ZADD', due, ARGV[5], entry)
    redis.call('ZADD', P .. 'dlv:pending', ARGV[5], id)
    claimed[#claimed + 1] = redis.call('HGETALL', key)
end
return claimed
""")

# Change a delivery's state and next attempt (counting an attempt if asked) and
# keep the due sets and the state indexes in step. ARGV: prefix, id, count an
# attempt ("1"/"0"), next attempt in µs, changes. Answers the record, or false.
_SCHEDULE = script("""
local id = ARGV[2]
local key = P .. 'dlv:' .. id
local f = redis.call('HMGET', key, 'webhook_id', '_seq', 'state', 'created_at')
if not f[1] then return false end
if ARGV[3] == '1' then redis.call('HINCRBY', key, 'attempts', 1) end
apply_changes(key, 5)
local state = redis.call('HGET', key, 'state')
if state ~= f[3] then
    local member, log = ordered(f[4], f[2], id), P .. 'dlv:wh:' .. f[1]
    redis.call('ZREM', P .. 'dlv:state:' .. f[3], member)
    redis.call('ZREM', log .. ':' .. f[3], member)
    redis.call('ZADD', P .. 'dlv:state:' .. state, 0, member)
    redis.call('ZADD', log .. ':' .. state, 0, member)
end
local due, entry = P .. 'dlv:due:' .. f[1], due_member(f[2], id)
if state == 'pending' then
    redis.call('ZADD', due, ARGV[4], entry)
    redis.call('ZADD', P .. 'dlv:pending', ARGV[4], id)
else
    redis.call('ZREM', due, entry)
    redis.call('ZREM', P .. 'dlv:pending', id)
end
return redis.call('HGETALL', key)
""")


class RedisWebhooks(RedisConnection, WebhookStore):
    async def create_webhook(self, url: str, events: list[str], secret: str) -> Webhook:
        hook = Webhook(id=new_id("wh"), url=url, events=list(events), secret=secret)
        keys = self._keys
        await self._insert(
            hook,
            keys.webhook(hook.id),
            stamp=hook.created_at,
            indexes=[keys.webhooks, *(keys.subscribers(event) for event in dict.fromkeys(events))],
        )
        return hook

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        return await self._get(Webhook, self._keys.webhook(webhook_id))

    async def list_webhooks(self, page: int = 1, page_size: int = 20) -> tuple[list[Webhook], int]:
        check_page(page, page_size)
        return await self._page(
            Webhook, self._keys.webhooks, self._keys.webhook(""), page, page_size
        )

    async def delete_webhook(self, webhook_id: str) -> bool:
        return bool(await self._run(_DELETE, [], [webhook_id]))

    async def enqueue_event(
        self, event_id: str, event: str, body: str, created_at: datetime
    ) -> int:
        return await self._run(
            _ENQUEUE, [], [event_id, event, body, to_storage(created_at), to_micros(created_at)]
        )

    async def claim_due_deliveries(
        self, webhook_id: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        if limit < 1:
            return []
        claimed = await self._run(
            _CLAIM,
            [],
            [webhook_id, to_micros(now), to_storage(lease_until), to_micros(lease_until), limit],
        )
        found = [pairs_to_dict(flat) for flat in claimed]
        # in insertion order, as the SQLite store answers
        return [from_hash(Delivery, f) for f in sorted(found, key=lambda f: int(f["_seq"]))]

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        state: DeliveryState,
        next_attempt_at: datetime,
        last_status: int | None,
        last_error: str | None,
        delivered_at: datetime | None = None,
    ) -> Delivery | None:
        check_delivery_state(state)
        changes = {
            "state": state,
            "next_attempt_at": next_attempt_at,
            "last_status": last_status,
            "last_error": last_error,
        }
        if delivered_at is not None:  # else the earlier delivered_at stays
            changes["delivered_at"] = delivered_at
        return await self._schedule(delivery_id, next_attempt_at, changes, count_attempt=True)

    async def resend_delivery(self, delivery_id: str, now: datetime) -> Delivery | None:
        return await self._schedule(
            delivery_id, now, {"state": "pending", "next_attempt_at": now}, count_attempt=False
        )

    async def _schedule(
        self,
        delivery_id: str,
        next_attempt_at: datetime,
        changes: dict[str, object],
        *,
        count_attempt: bool,
    ) -> Delivery | None:
        flat = await self._run(
            _SCHEDULE,
            [],
            [delivery_id, "1" if count_attempt else "0", to_micros(next_attempt_at),
             *changes_args(changes)],
        )  # fmt: skip
        return from_hash(Delivery, pairs_to_dict(flat)) if flat else None

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return await self._get(Delivery, self._keys.delivery(delivery_id))

    async def list_deliveries(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        webhook_id: str | None = None,
        state: DeliveryState | None = None,
    ) -> tuple[list[Delivery], int]:
        check_page(page, page_size)
        check_delivery_state(state)
        keys = self._keys
        return await self._page(
            Delivery, keys.delivery_log(webhook_id, state), keys.delivery(""), page, page_size
        )

    async def next_delivery_at(self) -> datetime | None:
        first = await self._redis.zrange(self._keys.pending, 0, 0, withscores=True)
        return from_micros(first[0][1]) if first else None
