"""`max_handshakes`: callers whose handshake waits for the adapter's decision are
bounded; one more is refused with REJ_OVERLOAD (2503) and remembers nothing, while
the callers already waiting and the connections already open carry on."""

from __future__ import annotations

import random

from srt_testing import Caller

from live.protocols.srt import ConnectionRequested, DataReceived, HandshakeRefused
from live.protocols.srt import handshake as hs
from live.protocols.srt.listener import REJ_OVERLOAD, ListenerConfig, SrtListener


def test_one_handshake_over_the_limit_is_refused_as_overloaded():
    listener = SrtListener(ListenerConfig(max_handshakes=2), rng=random.Random(3))
    established = Caller(listener, socket_id=100, addr=("192.0.2.1", 5000))
    established.connect(0.0)
    waiting = [Caller(listener, socket_id=200 + i, addr=("192.0.2.2", 6000 + i)) for i in range(2)]
    for caller in waiting:
        caller.induction(0.0)
        caller.conclusion(0.0)
    requests = listener.events()
    assert [type(e) for e in requests] == [ConnectionRequested, ConnectionRequested]

    extra = Caller(listener, socket_id=300, addr=("192.0.2.3", 7000))
    extra.induction(0.1)
    extra.conclusion(0.1)
    (reply,) = extra.collect()
    refusal = hs.parse_handshake(reply[16:])
    assert refusal.hs_type == REJ_OVERLOAD == 2503
    assert refusal.socket_id == listener.listener_id and refusal.cookie == extra.cookie
    assert listener.events() == [HandshakeRefused(extra.addr, waiting=2)]

    # the open connection still delivers, the waiting callers still get their answer
    established.data(established.seq, 1000, b"\x47" * 188, 0.2)
    listener.handle_timer(0.5)
    assert any(isinstance(e, DataReceived) for e in listener.events())
    assert listener.accept(requests[0].handle, 0.3)
    assert waiting[0].collect()

    # with room again (one was answered), the refused caller's next try gets in
    extra.conclusion(0.4)
    (request,) = listener.events()
    assert isinstance(request, ConnectionRequested) and request.peer == extra.addr


def test_repeats_of_a_waiting_conclusion_take_no_more_room():
    listener = SrtListener(ListenerConfig(max_handshakes=1), rng=random.Random(4))
    caller = Caller(listener)
    caller.induction(0.0)
    for i in range(4):  # resent every 250 ms while undecided
        caller.conclusion(i * 0.25)
    assert len(listener.events()) == 1
    assert caller.collect() == []  # no refusal: it is the one waiting
