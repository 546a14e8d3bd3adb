"""Stream leases in a real Redis: one holder, the takeover rule, renewal, expiry,
fencing tokens, and two nodes racing for one stream."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from live.broadcast.leases import Holder, LeaseBusy, LeaseUnavailable
from live.cluster.leases import RedisLeases


def never(holder: Holder) -> bool:
    return False


def always(holder: Holder) -> bool:
    return True


@pytest.fixture
async def node_b(redis_url: str):
    client = Redis.from_url(redis_url)
    # Renewal by hand (`renew_all`), so each test decides when it happens.
    leases = RedisLeases(client, "node-b", ttl_s=1.0, renew_s=3600)
    try:
        yield leases
    finally:
        await leases.close()
        await client.aclose()


@pytest.fixture
async def node_a(redis_client: Redis):
    leases = RedisLeases(redis_client, "node-a", ttl_s=1.0, renew_s=3600)
    try:
        yield leases
    finally:
        await leases.close()


async def test_a_held_stream_is_refused_to_another_node(node_a, node_b) -> None:
    lease = await node_a.acquire("ls_1", may_take_over=never)
    with pytest.raises(LeaseBusy) as busy:
        await node_b.acquire("ls_1", may_take_over=never)
    assert busy.value.holder.node_id == "node-a"
    assert abs(busy.value.holder.active_at - time.time()) < 60
    assert await node_b.held_anywhere("ls_1")
    await node_a.release(lease)
    assert not await node_b.held_anywhere("ls_1")
    assert (await node_b.acquire("ls_1", may_take_over=never)).token > lease.token


async def test_the_takeover_rule_sees_the_holders_last_media(node_a, node_b) -> None:
    lease = await node_a.acquire("ls_1", may_take_over=never)
    node_a.touch(lease, 1000.0)  # silent since 1970
    await node_a.renew_all()
    seen: list[Holder] = []

    def stale(holder: Holder) -> bool:
        seen.append(holder)
        return time.time() - holder.active_at > 2

    taken = await node_b.acquire("ls_1", may_take_over=stale)
    assert seen == [Holder("node-a", 1000.0)]
    assert taken.token > lease.token


async def test_the_displaced_holder_is_told_at_its_next_renewal(node_a, node_b) -> None:
    lost: list[str] = []

    async def on_lost(reason: str) -> None:
        lost.append(reason)

    first = await node_a.acquire("ls_1", may_take_over=never, on_lost=on_lost)
    await node_b.acquire("ls_1", may_take_over=always)
    await node_a.renew_all()
    await asyncio.sleep(0)  # the on_lost task
    assert lost == ["another node holds it now"]
    assert first.lost and "ls_1" not in node_a.held
    # Its release must not delete the new holder's lease.
    await node_a.release(first)
    assert (await node_b.holder("ls_1")).node_id == "node-b"


async def test_a_dead_nodes_lease_expires(node_a, node_b) -> None:
    await node_a.acquire("ls_1", may_take_over=never)
    await node_b.renew_all()
    await asyncio.sleep(1.3)  # the 1 s time to live, with no renewal from node-a
    assert not await node_b.held_anywhere("ls_1")
    await node_b.acquire("ls_1", may_take_over=never)


async def test_renewal_keeps_a_lease_past_its_time_to_live(redis_client) -> None:
    leases = RedisLeases(redis_client, "node-a", ttl_s=1.5, renew_s=0.1)
    try:
        await leases.acquire("ls_1", may_take_over=never)
        await asyncio.sleep(2.0)
        assert (await leases.holder("ls_1")).node_id == "node-a"
    finally:
        await leases.close()
    assert not await leases.held_anywhere("ls_1")


async def test_an_expired_lease_is_taken_back_when_nobody_took_it(node_a, redis_client) -> None:
    lease = await node_a.acquire("ls_1", may_take_over=never)
    await redis_client.delete("live:lease:ls_1")  # as if Redis lost it while unreachable
    await node_a.renew_all()
    holder = await node_a.holder("ls_1")
    assert holder is not None and holder.node_id == "node-a"
    assert not lease.lost


async def test_an_expired_lease_is_yielded_to_a_node_that_took_it(
    node_a, node_b, redis_client
) -> None:
    lease = await node_a.acquire("ls_1", may_take_over=never)
    await redis_client.delete("live:lease:ls_1")
    await node_b.acquire("ls_1", may_take_over=never)
    await node_b.release(node_b.held["ls_1"])  # and already ended its session
    await node_a.renew_all()
    assert lease.lost  # a newer token was granted: node-a's is fenced off
    assert not await node_a.held_anywhere("ls_1")


async def test_two_nodes_racing_for_streams_never_both_win(node_a, node_b) -> None:
    for round_ in range(50):
        stream = f"ls_race_{round_}"
        outcomes = await asyncio.gather(
            node_a.acquire(stream, may_take_over=never),
            node_b.acquire(stream, may_take_over=never),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, LeaseBusy) for o in outcomes if o not in winners)


async def test_each_orphan_is_claimed_by_one_node(node_a, node_b) -> None:
    claims = await asyncio.gather(
        *(leases.claim_orphan(f"ses_{i}") for i in range(20) for leases in (node_a, node_b))
    )
    assert sum(claims) == 20


async def test_no_redis_means_no_lease_decision() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    leases = RedisLeases(client, "node-a")
    try:
        with pytest.raises(LeaseUnavailable):
            await leases.acquire("ls_1", may_take_over=never)
    finally:
        await client.aclose()
