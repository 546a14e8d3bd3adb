"""Multi-key writes are atomic: two clients on two connections race each one over
many rounds, and the invariant it promises holds every time. The races that need
only the Store interface run on both backends (`two_nodes`); those that look at
Redis's keys run on Redis (`stores`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from live.store import SqliteStore, StaleFence, Store
from live.store.models import Asset, Session
from live.store.redis import RedisStore
from live.store.times import utcnow

ROUNDS = 30


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    first, second = await RedisStore.open(redis_url), await RedisStore.open(redis_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture(params=["sqlite", "redis"])
async def two_nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Store]]:
    """Two connections to one store, of each backend (SQLite: two connections to one file)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        first, second = await RedisStore.open(url), await RedisStore.open(url)
    else:
        first, second = await SqliteStore.open(tmp_path), await SqliteStore.open(tmp_path)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def _keys(store: RedisStore) -> set[str]:
    return {key async for key in store.client.scan_iter("live:*")}


async def test_fan_out_racing_a_webhook_delete_leaves_no_orphans(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = stores
    kept = await a.create_webhook("https://kept.example", ["asset.ready"], "s")
    for round_ in range(ROUNDS):
        doomed = await a.create_webhook("https://doomed.example", ["asset.ready"], "s")
        now = utcnow()
        enqueued = [
            a.enqueue_event(f"evt_{round_}_{n}", "asset.ready", "{}", now) for n in range(3)
        ]
        await asyncio.gather(*enqueued, b.delete_webhook(doomed.id))
        orphans, count = await b.list_deliveries(webhook_id=doomed.id)
        assert (orphans, count) == ([], 0)
        assert not await b.client.exists(f"live:dlv:due:{doomed.id}")
    items, total = await b.list_deliveries(1, 1000)
    assert total == 3 * ROUNDS == len(items)
    assert {d.webhook_id for d in items} == {kept.id}
    assert len({d.event_id for d in items}) == 3 * ROUNDS  # each event exactly once
    pending = await b.client.zcard("live:dlv:pending")
    assert pending == total  # every delivery in the log is due exactly once


async def test_two_fan_outs_at_once_give_one_delivery_per_subscriber_each(
    two_nodes: tuple[Store, Store],
) -> None:
    a, b = two_nodes
    hooks = [
        await a.create_webhook(f"https://{n}.example", ["livestream.live"], "s") for n in range(4)
    ]
    now = utcnow()
    counts = await asyncio.gather(
        *(store.enqueue_event(f"evt_{store is a}_{n}", "livestream.live", "{}", now)
          for n in range(ROUNDS) for store in (a, b))
    )  # fmt: skip
    assert counts == [4] * (2 * ROUNDS)
    items, total = await a.list_deliveries(1, 1000)
    assert total == len(items) == 4 * 2 * ROUNDS
    assert len({(d.webhook_id, d.event_id) for d in items}) == total
    assert len({d.id for d in items}) == total
    for hook in hooks:
        assert (await a.list_deliveries(webhook_id=hook.id))[1] == 2 * ROUNDS


async def test_each_due_delivery_is_claimed_by_exactly_one_claimer(
    two_nodes: tuple[Store, Store],
) -> None:
    a, b = two_nodes
    hook = await a.create_webhook("https://a.example", ["asset.ready"], "s")
    now = utcnow()
    for round_ in range(ROUNDS):
        for n in range(10):
            await a.enqueue_event(f"evt_{round_}_{n}", "asset.ready", "{}", now)
        lease = now + timedelta(seconds=60)
        claims = await asyncio.gather(
            *(store.claim_due_deliveries(hook.id, now, lease, 3) for store in (a, b, a, b, a))
        )
        ids = [d.id for claim in claims for d in claim]
        assert len(ids) == len(set(ids)) == 10  # nobody twice, nobody left out
        for claim in claims:
            for delivery in claim:
                await a.record_attempt(
                    delivery.id, state="delivered", next_attempt_at=now, last_status=200,
                    last_error=None, delivered_at=now,
                )  # fmt: skip
    assert await a.next_delivery_at() is None


async def test_a_dead_claimers_lease_is_taken_over_once_it_runs_out(
    two_nodes: tuple[Store, Store],
) -> None:
    dead, alive = two_nodes
    hook = await dead.create_webhook("https://a.example", ["asset.ready"], "s")
    now = utcnow()
    await dead.enqueue_event("evt_1", "asset.ready", "{}", now)
    lease = now + timedelta(seconds=30)
    (held,) = await dead.claim_due_deliveries(hook.id, now, lease, 10)
    assert (
        await alive.claim_due_deliveries(hook.id, lease - timedelta(microseconds=1), lease, 10)
        == []
    )
    takers = await asyncio.gather(
        alive.claim_due_deliveries(hook.id, lease, lease + timedelta(seconds=30), 10),
        dead.claim_due_deliveries(hook.id, lease, lease + timedelta(seconds=30), 10),
    )
    assert sorted(len(t) for t in takers) == [0, 1]
    assert [d.id for t in takers for d in t] == [held.id]


async def test_each_queued_vod_job_is_claimed_by_exactly_one_worker(
    two_nodes: tuple[Store, Store],
) -> None:
    a, b = two_nodes
    now = utcnow()
    lease = now + timedelta(seconds=60)
    for round_ in range(ROUNDS):
        for n in range(4):
            await a.enqueue_vod_job(f"ast_{round_}_{n}")
        claims = await asyncio.gather(
            *(store.claim_vod_job(f"w{i}", now, lease) for i, store in enumerate((a, b) * 3))
        )
        ids = [job.asset_id for job in claims if job is not None]
        assert sorted(ids) == [f"ast_{round_}_{n}" for n in range(4)]  # each once
        for job in claims:
            if job is not None:
                assert await a.remove_vod_job(job.asset_id, job.node_id) is True
    assert await a.list_vod_jobs() == []


async def test_a_dead_nodes_vod_job_is_taken_over_by_one_node_once_its_lease_lapses(
    two_nodes: tuple[Store, Store],
) -> None:
    dead, alive = two_nodes
    for round_ in range(ROUNDS):
        asset_id = f"ast_{round_}"
        now = utcnow()
        lease = now + timedelta(seconds=30)
        await dead.enqueue_vod_job(asset_id)
        held = await dead.claim_vod_job("dead", now, lease)
        assert held is not None and held.asset_id == asset_id
        later = lease + timedelta(seconds=30)
        takers = await asyncio.gather(
            alive.claim_vod_job("alive-1", lease, later),
            dead.claim_vod_job("alive-2", lease, later),
            alive.renew_vod_job(asset_id, "dead", later),  # too late: the lease lapsed
        )
        winners = [job for job in takers[:2] if job is not None]
        # the dead node's late renewal either lands before the takeover (and then
        # nobody takes the job) or after (and fails); never both
        if takers[2]:
            assert winners == []
            assert await dead.remove_vod_job(asset_id, "dead") is True
        else:
            assert len(winners) == 1 and winners[0].attempts == 2
            assert await alive.remove_vod_job(asset_id, "dead") is False
            assert await alive.remove_vod_job(asset_id, winners[0].node_id) is True
    assert await alive.list_vod_jobs() == []


async def test_each_expired_ban_is_lifted_for_exactly_one_caller(
    two_nodes: tuple[Store, Store],
) -> None:
    a, b = two_nodes
    streams = [await a.create_livestream(name=f"s{n}") for n in range(6)]
    for _round in range(ROUNDS):
        now = utcnow()
        for ls in streams[:5]:
            await a.ban(ls.id, "cool down", now - timedelta(seconds=1))
        await a.ban(streams[5].id, "for good")  # no end: never lifted
        lifted = await asyncio.gather(a.lift_expired_bans(now), b.lift_expired_bans(now))
        ids = [ls.id for batch in lifted for ls in batch]
        assert sorted(ids) == sorted(ls.id for ls in streams[:5])  # each once, in one batch
        assert all(not ls.is_banned(now) for batch in lifted for ls in batch)
    assert await a.next_ban_expiry() is None
    still = await a.get_livestream(streams[5].id)
    assert still is not None and still.is_banned()


async def test_reset_stream_key_swaps_the_lookup_in_one_step(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = stores
    ls = await a.create_livestream(name="x")
    # Counts the stream key lookups (by hash) that resolve to the livestream, in one
    # atomic read (a test may use KEYS; the store never does).
    count_keys = b.client.register_script(
        "local n, current = 0, redis.call('HGET', KEYS[1], '_key_hash') "
        "for _, k in ipairs(redis.call('KEYS', 'live:ls:key:*')) do "
        "  if redis.call('GET', k) == ARGV[1] then n = n + 1 "
        "    if k ~= 'live:ls:key:' .. current then return -1 end end end "
        "return n"
    )
    stop = asyncio.Event()

    async def reset_many() -> None:
        for _ in range(ROUNDS * 5):
            assert await a.reset_stream_key(ls.id) is not None
        stop.set()

    async def observe() -> int:
        seen = 0
        while not stop.is_set():
            assert await count_keys(keys=[f"live:ls:{ls.id}"], args=[ls.id]) == 1
            current = await b.get_livestream(ls.id)
            assert current is not None
            found = await b.get_livestream_by_stream_key(current.stream_key)
            assert found is None or found.stream_key == current.stream_key  # never a stale record
            seen += 1
        return seen

    _, observations = await asyncio.gather(reset_many(), observe())
    assert observations > 0


async def test_deleting_a_livestream_while_it_changes_leaves_nothing_behind(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = stores
    for _ in range(ROUNDS):
        ls = await a.create_livestream(name="x")
        await asyncio.gather(
            a.ban(ls.id, None, utcnow() + timedelta(hours=1)),
            b.delete_livestream(ls.id),
            a.reset_stream_key(ls.id),
            a.update_livestream(ls.id, name="y"),
            a.set_live(ls.id, True),
        )
    assert await _keys(a) == {"live:seq"}  # no record rebuilt, no lookup, no index entry


async def test_deletes_cascade_to_every_index_and_dependant(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    a, _ = stores
    ls = await a.create_livestream(name="x")
    await a.ban(ls.id, None, utcnow() + timedelta(hours=1))
    key, _plaintext = await a.create_api_key("k", "admin")
    session = await a.create_session(Session(livestream_id=ls.id, protocol="rtmp"))
    asset = await a.create_asset(Asset(livestream_id=ls.id, session_id=session.id))
    await a.update_session(session.id, asset_id=asset.id)
    hook = await a.create_webhook("https://a.example", ["asset.ready", "livestream.live"], "s")
    await a.enqueue_event("evt_1", "asset.ready", "{}", utcnow())
    await a.enqueue_event("evt_2", "livestream.live", "{}", utcnow())
    (sent, _), _ = await a.list_deliveries(webhook_id=hook.id)
    await a.record_attempt(
        sent.id, state="delivered", next_attempt_at=utcnow(), last_status=200, last_error=None
    )

    assert await a.delete_livestream(ls.id)
    assert await a.delete_api_key(key.id)
    assert await a.delete_asset(asset.id)
    assert await a.delete_webhook(hook.id)
    # Sessions are history and stay (with their stream's index), minus the asset.
    assert await _keys(a) == {
        "live:seq", f"live:ses:{session.id}", f"live:ses:ls:{ls.id}", "live:ses:open",
    }  # fmt: skip
    kept = await a.get_session(session.id)
    assert kept is not None and kept.asset_id is None


async def test_ensuring_one_key_from_two_nodes_makes_one_key(
    two_nodes: tuple[Store, Store],
) -> None:
    a, b = two_nodes
    for n in range(ROUNDS):
        made = await asyncio.gather(
            a.ensure_api_key(f"lk_env-{n}", "env", "admin"),
            b.ensure_api_key(f"lk_env-{n}", "env", "admin"),
        )
        assert made[0].id == made[1].id
    assert await a.count_api_keys() == ROUNDS


async def test_the_racers_are_two_clients(stores: tuple[RedisStore, RedisStore]) -> None:
    """The races above are between connections, not within one client."""
    a, b = stores
    assert await a.client.client_id() != await b.client.client_id()


async def test_a_lost_lease_never_overwrites_the_new_owner(two_nodes: tuple[Store, Store]) -> None:
    old_owner, new_owner = two_nodes
    session = await old_owner.create_session(
        Session(livestream_id="ls_a", protocol="rtmp"), fence=1
    )
    stale = 0
    for fence in range(1, ROUNDS + 1):

        async def write(node: Store, token: int, value: int) -> None:
            nonlocal stale
            try:
                await node.update_session(session.id, fence=token, bytes_in=value)
            except StaleFence:
                stale += 1

        # the node whose lease ran out (token `fence`) and the one that took it over
        await asyncio.gather(
            write(old_owner, fence, -fence),
            write(new_owner, fence + 1, fence),
            write(old_owner, fence, -fence),
        )
        current = await new_owner.get_session(session.id)
        assert current is not None and current.bytes_in == fence  # the newest owner's write
    assert stale > 0
