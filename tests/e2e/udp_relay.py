"""A UDP relay on loopback that impairs a link the way real networks do.

Between one caller and a server, in both directions: a datagram may be held back
and sent after the next one (Wi-Fi and bonded links swap neighbours), sent twice,
or dropped, each at a given rate and from a seeded random source. It runs an
asyncio loop of its own in a thread, so a test can drive blocking clients beside
it, and counts what it did.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

# A datagram held back to be overtaken goes anyway after this long, so a swap never
# turns into a loss when nothing follows it.
_HOLD_S = 0.005


@dataclass(frozen=True)
class Impairment:
    swap: float = 0.0
    duplicate: float = 0.0
    drop: float = 0.0


@dataclass
class RelayCounts:
    forwarded: int = 0
    swapped: int = 0
    duplicated: int = 0
    dropped: int = 0


class _Direction:
    """One way through the relay: decides each datagram's fate, then `send`s."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[bytes], None],
        impairment: Impairment,
        rng: random.Random,
    ) -> None:
        self._loop = loop
        self._send = send
        self.impairment = impairment
        self._rng = rng
        self.counts = RelayCounts()
        self.impairing = True
        self._held: bytes | None = None
        self._held_timer: asyncio.TimerHandle | None = None

    def pass_on(self, data: bytes) -> None:
        impairment, draw = self.impairment, self._rng.random()
        if not self.impairing:
            self.flush()
            self._forward(data)
            return
        if draw < impairment.drop:
            self.counts.dropped += 1
            return
        if self._held is not None:  # this one overtakes the one held back
            self._forward(data)
            self.flush()
            return
        if draw < impairment.drop + impairment.swap:
            self.counts.swapped += 1
            self._held = data
            self._held_timer = self._loop.call_later(_HOLD_S, self.flush)
            return
        self._forward(data)
        if draw < impairment.drop + impairment.swap + impairment.duplicate:
            self.counts.duplicated += 1
            self._forward(data)

    def flush(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        held, self._held = self._held, None
        if held is not None:
            self._forward(held)

    def _forward(self, data: bytes) -> None:
        self.counts.forwarded += 1
        self._send(data)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr) -> None:
        self.on_datagram(data, addr)


class UdpRelay:
    """Callers connect to `port`; the server sees the relay's own address."""

    def __init__(self, server_port: int, impairment: Impairment, *, seed: int = 1) -> None:
        self._server = ("127.0.0.1", server_port)
        self._impairment = impairment
        self._rng = random.Random(seed)
        self._caller: tuple[str, int] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.port: int = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(5)

    async def _open(self) -> int:
        loop = asyncio.get_running_loop()
        self._outer, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._from_caller), local_addr=("127.0.0.1", 0)
        )
        self._inner, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._from_server), remote_addr=self._server
        )
        self.upstream = _Direction(loop, self._inner.sendto, self._impairment, self._rng)
        self.downstream = _Direction(loop, self._to_caller, self._impairment, self._rng)
        return self._outer.get_extra_info("sockname")[1]

    def stop_impairing(self) -> None:
        """From now on every datagram passes as it comes."""

        def stop() -> None:
            for direction in (self.upstream, self.downstream):
                direction.impairing = False
                direction.flush()

        self._loop.call_soon_threadsafe(stop)

    def close(self) -> None:
        def shut() -> None:
            self._outer.close()
            self._inner.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shut)
        self._thread.join(5)
        self._loop.close()

    def _from_caller(self, data: bytes, addr) -> None:
        self._caller = addr
        self.upstream.pass_on(data)

    def _from_server(self, data: bytes, addr) -> None:
        if self._caller is not None:
            self.downstream.pass_on(data)

    def _to_caller(self, data: bytes) -> None:
        assert self._caller is not None
        self._outer.sendto(data, self._caller)
