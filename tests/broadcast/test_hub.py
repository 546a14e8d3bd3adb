import asyncio

from live.broadcast.hub import Gap, Hub, StreamEnded, TracksChanged
from live.media.packet import MediaPacket, TrackInfo

VIDEO = TrackInfo("video", "h264", b"\x01", 16, 16)


def frame(n, key=False):
    return MediaPacket("video", n, n, b"x", key)


async def test_late_subscriber_gets_the_current_tracks_first():
    hub = Hub()
    hub.set_tracks((VIDEO,))
    subscription = hub.subscribe("late")
    assert await subscription.get() == TracksChanged((VIDEO,))


async def test_slow_consumer_drops_until_keyframe_and_others_get_everything():
    hub = Hub()
    hub.set_tracks((VIDEO,))
    slow = hub.subscribe("slow", max_packets=10)
    fast = hub.subscribe("fast", max_packets=1000)
    assert isinstance(await slow.get(), TracksChanged)
    for n in range(20):
        hub.push(frame(n, key=n == 0))
    first = [await slow.get() for _ in range(len(slow))]  # the consumer catches up
    assert [p.dts for p in first] == list(range(10))
    for n in range(20, 30):
        hub.push(frame(n, key=n == 25))
    hub.end("publisher_disconnected")
    fast_items = [await fast.get() for _ in range(len(fast))]
    assert sum(isinstance(i, MediaPacket) for i in fast_items) == 30
    rest = [await slow.get() for _ in range(len(slow))]
    assert isinstance(rest[0], Gap) and rest[0].dropped == 15  # 10..24
    assert [p.dts for p in rest[1:-1]] == list(range(25, 30))
    assert rest[1].keyframe
    assert isinstance(rest[-1], StreamEnded)
    assert slow.dropped == 15


async def test_get_waits_for_the_next_item():
    hub = Hub()
    subscription = hub.subscribe("s")
    waiter = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    hub.push(frame(1, True))
    assert (await asyncio.wait_for(waiter, 1)).dts == 1


async def test_inline_consumer_takes_packets_at_once_and_the_queue_keeps_order():
    hub = Hub()
    sub = hub.subscribe("inline")
    taken = []
    sub.take_media_inline(taken.append)
    hub.push(frame(0, key=True))
    assert [p.pts for p in taken] == [0] and len(sub) == 0  # no queue, no wake-up
    hub.set_tracks((VIDEO,))  # a control item is queued ...
    hub.push(frame(1))  # ... and a packet behind it waits its turn
    assert [p.pts for p in taken] == [0] and len(sub) == 2
    assert isinstance(await sub.get(), TracksChanged)
    assert (await sub.get()).pts == 1
    hub.push(frame(2))  # the queue is empty again
    assert [p.pts for p in taken] == [0, 2]
    hub.end("done")
    assert isinstance(await sub.get(), StreamEnded)
