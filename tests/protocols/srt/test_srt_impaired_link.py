"""The receiving core over a link that reorders, duplicates and loses datagrams.

A scripted sender answers NAKs with retransmissions and ACKs with ACKACKs, as
libsrt does; between it and the listener a seeded link swaps neighbouring
datagrams, sends some twice and drops some, in both directions. Whatever the link
does, every payload must come out exactly once, in order, byte for byte."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from srt_testing import ISN, Caller, control_fields

from live.protocols.srt import ConnectionClosed, DataReceived
from live.protocols.srt import packets as pk
from live.protocols.srt.listener import ListenerConfig, SrtListener
from live.protocols.srt.seqno import seq_add, seq_diff

PACKETS = 3000
TICK = 0.002  # one packet every 2 ms: about 5 Mbit/s of 1316-byte payloads
LATENCY_MS = 300
ONE_WAY_DELAY = 0.005


@dataclass(frozen=True)
class Impairment:
    swap: float = 0.0
    duplicate: float = 0.0
    drop: float = 0.0


def payload(index: int) -> bytes:
    return index.to_bytes(4, "big") * 329  # 1316 bytes, like 7 TS packets


class Link:
    """One direction with a fixed delay: a datagram may be held back and sent after
    the next one (a swap of neighbours), sent twice, or dropped."""

    def __init__(self, impairment: Impairment, rng: random.Random) -> None:
        self.impairment = impairment
        self.rng = rng
        self.in_flight: list[tuple[float, bytes]] = []
        self.held: bytes | None = None
        self.counts = {"swapped": 0, "duplicated": 0, "dropped": 0}

    def send(self, datagram: bytes, now: float) -> None:
        draw = self.rng.random()
        impairment = self.impairment
        if draw < impairment.drop:
            self.counts["dropped"] += 1
            return
        if self.held is not None:  # overtakes the one held back
            self._put(datagram, now)
            self._put(self.held, now)
            self.held = None
            return
        if draw < impairment.drop + impairment.swap:
            self.counts["swapped"] += 1
            self.held = datagram
            return
        self._put(datagram, now)
        if draw < impairment.drop + impairment.swap + impairment.duplicate:
            self.counts["duplicated"] += 1
            self._put(datagram, now)

    def _put(self, datagram: bytes, now: float) -> None:
        self.in_flight.append((now + ONE_WAY_DELAY, datagram))

    def arrivals(self, now: float) -> list[bytes]:
        due = [d for at, d in self.in_flight if at <= now]
        self.in_flight = [(at, d) for at, d in self.in_flight if at > now]
        return due

    def release(self, now: float) -> None:
        """Nothing more to overtake it: the held datagram goes, late."""
        if self.held is not None:
            self._put(self.held, now)
            self.held = None


class Sender:
    """The caller's data path: sends, retransmits what is NAKed, ACKACKs."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.sent = 0

    def data(self, index: int, *, retransmitted: bool = False) -> bytes:
        return pk.data_packet(
            seq_add(ISN, index), index * int(TICK * 1e6), self.caller.peer_id, payload(index),
            msgno=index + 1, retransmitted=retransmitted,
        )  # fmt: skip

    def answer(self, datagram: bytes) -> list[bytes]:
        control_type, _sub, info, _dest, body = control_fields(datagram)
        if control_type == pk.NAK:
            out = []
            for first, last in pk.decode_loss_list(body):
                for offset in range(seq_diff(first, last) + 1):
                    index = seq_diff(ISN, seq_add(first, offset))
                    if 0 <= index < self.sent:
                        out.append(self.data(index, retransmitted=True))
            return out
        if control_type == pk.ACK and len(body) > 4:  # full ACKs are ACKACKed
            return [pk.control_packet(pk.ACKACK, 0, info, 0, self.caller.peer_id, b"\0" * 4)]
        return []


def run(impairment: Impairment, seed: int, *, shutdown: bool = False):
    rng = random.Random(seed)
    listener = SrtListener(ListenerConfig(latency=LATENCY_MS / 1000), rng=random.Random(seed))
    caller = Caller(listener, latency_ms=LATENCY_MS)
    handle = caller.connect(0.0)
    caller.collect()
    sender = Sender(caller)
    forward, backward = Link(impairment, rng), Link(impairment, rng)
    delivered: list[bytes] = []
    events = []

    def step(now: float) -> None:
        for datagram in forward.arrivals(now):
            listener.receive_datagram(datagram, caller.addr, now)
        listener.handle_timer(now)
        for datagram in caller.collect():
            backward.send(datagram, now)
        for datagram in backward.arrivals(now):
            for answer in sender.answer(datagram):
                forward.send(answer, now)
        for event in listener.events():
            events.append(event)
            if isinstance(event, DataReceived):
                delivered.append(event.data)

    now = 0.0
    for index in range(PACKETS):
        now = index * TICK
        forward.send(sender.data(index), now)
        sender.sent += 1
        step(now)
    # The last packets go through clean: a loss no later packet reveals cannot be
    # asked for, whatever the receiver does.
    forward.impairment = backward.impairment = Impairment(swap=impairment.swap)
    for index in range(PACKETS, PACKETS + 50):
        now = index * TICK
        forward.send(sender.data(index), now)
        sender.sent += 1
        step(now)
    if shutdown:
        forward.send(pk.control_packet(pk.SHUTDOWN, 0, 0, 0, caller.peer_id, b"\0" * 4), now)
    for _ in range(1000):
        now += TICK
        forward.release(now)
        backward.release(now)
        step(now)
    stats = (listener.connections[handle].receiver.stats if handle in listener.connections
             else None)  # fmt: skip
    return b"".join(delivered), sender.sent, stats, forward.counts, events


def expected(count: int) -> bytes:
    return b"".join(payload(i) for i in range(count))


def indices(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 1316)]


@pytest.mark.parametrize("seed", range(4))
def test_reordering_alone(seed):
    data, sent, stats, counts, _ = run(Impairment(swap=0.02), seed)
    assert counts["swapped"] > 40
    assert indices(data) == list(range(sent)) and data == expected(sent)
    assert stats.dropped == 0 and stats.lost == stats.recovered > 0
    assert stats.duplicate + stats.belated == stats.retransmitted  # each dropped once


@pytest.mark.parametrize("seed", range(4))
def test_duplicated_datagrams_alone(seed):
    data, sent, stats, counts, _ = run(Impairment(duplicate=0.03), seed)
    assert counts["duplicated"] > 60
    assert data == expected(sent)
    assert stats.lost == 0 and stats.duplicate > counts["duplicated"] / 2  # some were ACKACKs


@pytest.mark.parametrize("seed", range(6))
def test_reordering_duplicates_and_loss_together(seed):
    impairment = Impairment(swap=0.02, duplicate=0.01, drop=0.02)
    data, sent, stats, counts, _ = run(impairment, seed)
    assert counts["dropped"] > 40 and counts["swapped"] > 40 and counts["duplicated"] > 20
    assert indices(data) == list(range(sent)) and data == expected(sent)
    assert stats.dropped == 0 and stats.recovered == stats.lost


@pytest.mark.parametrize("seed", range(8))
def test_a_shutdown_among_reordered_datagrams_loses_none_of_them(seed):
    """The SHUTDOWN itself may overtake the last data (a link that reorders), or
    come before a late original: what was sent before it all counts."""
    data, sent, _stats, _counts, events = run(Impairment(swap=0.3), seed, shutdown=True)
    assert data == expected(sent)
    assert isinstance(events[-1], ConnectionClosed) and events[-1].reason == "shutdown"
