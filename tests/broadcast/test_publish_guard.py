"""The manager's key check behind the guard: wrong keys from one address are slowed,
then refused (a right key too, from that address), counted per protocol; other
addresses publish as before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from live.attempts import AttemptGuard, GuardSettings
from live.broadcast.manager import PublishRefused, SessionRules, StreamManager

# Delays of a millisecond: the test sees that attempts were slowed, not how long.
GUARD = GuardSettings(
    slow_after=2, refuse_after=4, refuse_for_s=60, delay_s=0.001, max_delay_s=0.001
)


@pytest.fixture
async def manager(store) -> AsyncIterator[StreamManager]:
    instance = StreamManager(store, None, SessionRules(), guard=AttemptGuard(GUARD))
    yield instance
    await instance.shutdown()


async def _publish(manager: StreamManager, key: str, remote: str, protocol: str = "rtmp"):
    return await manager.begin_publish(
        key, protocol=protocol, remote_addr=remote, stop=lambda reason: None
    )


async def _refusal(manager: StreamManager, key: str, remote: str, protocol: str = "rtmp"):
    with pytest.raises(PublishRefused) as refused:
        await _publish(manager, key, remote, protocol)
    return refused.value


async def test_wrong_keys_are_slowed_then_refused_and_a_right_key_from_elsewhere_works(
    manager, store
) -> None:
    livestream = await store.create_livestream(name="show")
    for port in range(4):
        refusal = await _refusal(manager, f"sk_guess{port}", f"192.0.2.7:{port}")
        assert refusal.reason == "unknown_key"
    assert manager.throttled[("rtmp", "slowed")] == 2  # the third and fourth waited
    refusal = await _refusal(manager, livestream.stream_key, "192.0.2.7:9")
    assert refusal.reason == "rate_limited"  # not even the right key gets through now
    assert refusal.retry_after_s == 60
    assert manager.throttled[("rtmp", "refused")] == 1
    assert manager.refusals["rate_limited"] == 1
    assert manager.refusals["unknown_key"] == 4

    publisher = await _publish(manager, livestream.stream_key, "192.0.2.8:1")
    assert publisher.remote_addr == "192.0.2.8:1"


async def test_protocols_share_the_count_and_are_counted_apart(manager, store) -> None:
    for protocol in ("rtmp", "srt", "whip", "rtmp"):
        await _refusal(manager, "sk_guess", "[2001:db8::1]:5", protocol)
    refusal = await _refusal(manager, "sk_guess", "[2001:db8::2]:5", "whip")  # same /64
    assert refusal.reason == "rate_limited"
    assert manager.throttled[("whip", "slowed")] == 1
    assert manager.throttled[("rtmp", "slowed")] == 1
    assert manager.throttled[("whip", "refused")] == 1
    assert manager.throttled[("srt", "refused")] == 0


async def test_a_wrong_passphrase_counts_like_a_wrong_key(manager, store) -> None:
    livestream = await store.create_livestream(name="show", srt_passphrase="a passphrase")
    for _ in range(4):
        authorised = await manager.authorise(
            livestream.stream_key, protocol="srt", remote_addr="192.0.2.9:1"
        )
        assert authorised.id == livestream.id
        manager.secret_failed("192.0.2.9:1")  # what the SRT ingest does on a bad secret
    refusal = await _refusal(manager, livestream.stream_key, "192.0.2.9:1", "srt")
    assert refusal.reason == "rate_limited"


async def test_right_keys_never_count_against_an_address(manager, store) -> None:
    livestream = await store.create_livestream(name="show")
    for port in range(10):
        publisher = await _publish(manager, livestream.stream_key, f"192.0.2.10:{port}")
        await publisher.end()
        await manager.end_left(publisher, "publisher_disconnected")
    assert not manager.throttled
