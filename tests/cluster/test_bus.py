"""Commands and live sessions between nodes over a real Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from waiting import eventually

from live.cluster.bus import CommandBus


async def test_a_command_reaches_every_node_and_sessions_reach_the_others(
    redis_client: Redis, redis_url: str
) -> None:
    received: dict[str, list[tuple[str, str]]] = {"a": [], "b": []}

    def handler(node: str):
        async def on_disconnect(livestream_id: str, reason: str) -> bool:
            received[node].append((livestream_id, reason))
            return node == "a"

        return on_disconnect

    other = Redis.from_url(redis_url)
    bus_a = CommandBus(redis_client, "a", handler("a"))
    bus_b = CommandBus(other, "b", handler("b"))
    await bus_a.start()
    await bus_b.start()
    try:
        await bus_b.disconnect("ls_1", "banned")
        await eventually(lambda: received["a"] and received["b"])
        assert received == {"a": [("ls_1", "banned")], "b": [("ls_1", "banned")]}

        await bus_a.share("sessions", {"ls_1": {"session": {"id": "ses_1"}}})
        await eventually(lambda: bus_b.snapshot("sessions", "ls_1", max_age_s=10) is not None)
        assert bus_b.snapshot("sessions", "ls_1", max_age_s=10) == {"session": {"id": "ses_1"}}
        assert bus_b.snapshot("viewers", "ls_1", max_age_s=10) is None
        assert bus_a.snapshot("sessions", "ls_1", max_age_s=10) is None  # not its own
    finally:
        await bus_a.close()
        await bus_b.close()
        await other.aclose()


async def test_a_garbled_message_is_dropped_and_the_bus_goes_on(redis_client: Redis) -> None:
    received: list[str] = []

    async def on_disconnect(livestream_id: str, reason: str) -> bool:
        received.append(livestream_id)
        return True

    bus = CommandBus(redis_client, "a", on_disconnect)
    await bus.start()
    try:
        await redis_client.publish("live:commands", b"\xff not json")
        await redis_client.publish("live:commands", '{"type": "disconnect"}')
        await bus.disconnect("ls_2", "kicked")
        await eventually(lambda: received)
        assert received == ["ls_2"]
    finally:
        await bus.close()
