"""Property tests: whatever arrives, the listener neither raises nor lets it touch
another caller's connection; malformed datagrams are counted."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from srt_testing import ISN, Caller

from live.protocols.srt import DataReceived
from live.protocols.srt import handshake as hs
from live.protocols.srt import packets as pk
from live.protocols.srt.listener import SrtListener

ATTACKER = ("203.0.113.66", 6666)

header = st.builds(
    lambda first, second, ts, dest: pk.HEADER.pack(first, second, ts, dest),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


def _handshake(version: int, kind: int, extensions: list[tuple[int, bytes]]) -> bytes:
    return hs.Handshake(version, 0, 5, 1, 1500, 8192, kind, 9, 0, extensions=extensions).encode()


def _control(body: bytes, cut: int) -> bytes:
    return pk.control_packet(pk.HANDSHAKE, 0, 0, 0, 0, body)[:cut]


words = st.binary(max_size=24).map(lambda b: b[: len(b) // 4 * 4])
handshake_body = st.builds(
    _handshake,
    st.sampled_from([4, 5, 0, 99]),
    st.sampled_from([hs.INDUCTION, hs.CONCLUSION, 0, 1005]),
    st.lists(st.tuples(st.integers(0, 10), words), max_size=4),
)
datagram = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda h, b: h + b, header, st.binary(max_size=80)),
    st.builds(_control, handshake_body, st.integers(0, 200)),
    st.builds(
        lambda t, body: pk.control_packet(t, 0, 1, 0, 0, body),
        st.integers(0, 0x7FFF),
        st.binary(max_size=40),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(datagram, min_size=1, max_size=20), st.booleans())
def test_garbage_never_raises_nor_disturbs_a_connection(garbage, from_the_caller):
    listener = SrtListener(rng=random.Random(11))
    caller = Caller(listener)
    handle = caller.connect(0.0)
    caller.data(ISN, 0, b"first", now=0.0)
    source = caller.addr if from_the_caller else ATTACKER
    for i, data in enumerate(garbage):
        # aim some at the live connection's socket ID
        if len(data) >= 16 and i % 2:
            data = data[:12] + handle.to_bytes(4, "big") + data[16:]
        listener.receive_datagram(data, source, 0.001 * i)
        listener.handle_timer(0.001 * i)
    if not from_the_caller:
        caller.data(ISN + 1, 1000, b"second", now=0.05)
        listener.handle_timer(1.0)
        delivered = [e.data for e in listener.events() if isinstance(e, DataReceived)]
        assert b"".join(delivered) == b"firstsecond"
        assert handle in listener.connections
    listener.get_timer()
    listener.datagrams_to_send()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_handshake_parser_only_raises_packet_error(body):
    try:
        parsed = hs.parse_handshake(body)
    except pk.PacketError:
        return
    assert parsed.encode() == body[: 48 + sum(4 + len(c) for _, c in parsed.extensions)]


def test_short_datagrams_are_counted_as_malformed():
    listener = SrtListener(rng=random.Random(1))
    listener.receive_datagram(b"\x80\x00", ATTACKER, 0.0)
    listener.receive_datagram(pk.control_packet(pk.HANDSHAKE, 0, 0, 0, 0, b"short"), ATTACKER, 0)
    assert listener.stats.malformed == 2
    assert listener.datagrams_to_send() == [] and listener.events() == []
