"""The listener's handshake with a libsrt-like caller: induction, conclusion,
decisions, rejections and the repeats a caller sends while it waits."""

from __future__ import annotations

import random

import pytest
from srt_testing import CALLER, CALLER_ID, ISN, Caller, control_fields

from live.protocols.srt import ConnectionRequested
from live.protocols.srt import handshake as hs
from live.protocols.srt import packets as pk
from live.protocols.srt.listener import (
    REJ_BADSECRET,
    REJ_CONFLICT,
    REJ_CONGESTION,
    REJ_FILTER,
    REJ_MESSAGEAPI,
    REJ_ROGUE,
    REJ_UNSECURE,
    REJ_VERSION,
    ListenerConfig,
    SrtListener,
)


@pytest.fixture
def listener() -> SrtListener:
    return SrtListener(rng=random.Random(7))


def test_induction_answer(listener):
    caller = Caller(listener)
    answer = caller.induction(now=100.0)
    (datagram,) = caller.received
    control_type, _sub, _info, destination, _ = control_fields(datagram)
    assert control_type == pk.HANDSHAKE and destination == CALLER_ID
    assert answer.version == 5
    assert answer.extension == hs.SRT_MAGIC and answer.encryption == 0
    assert answer.hs_type == hs.INDUCTION
    assert answer.cookie != 0 and answer.extensions == []
    assert answer.isn == ISN
    # stateless: nothing is remembered, the same minute gives the same cookie
    assert Caller(listener).induction(now=110.0).cookie == answer.cookie
    assert Caller(listener, addr=("192.0.2.10", 40001)).induction(now=110.0).cookie != answer.cookie


@pytest.mark.parametrize("destination", ["zero", "listener"])
def test_conclusion_to_socket_zero_or_ours_asks_once(listener, destination):
    caller = Caller(listener, stream_id="#!::r=live/sk_x,m=publish", latency_ms=200)
    induction = caller.induction(0.0)
    target = 0 if destination == "zero" else induction.socket_id
    for i in range(5):  # the caller repeats every 250 ms while undecided
        caller.conclusion(i * 0.25, destination=target)
    events = listener.events()
    assert len(events) == 1
    (event,) = events
    assert isinstance(event, ConnectionRequested)
    assert (event.stream_id, event.stream_key, event.mode) == (
        "#!::r=live/sk_x,m=publish", "sk_x", "publish",
    )  # fmt: skip
    assert event.peer == CALLER and not event.encrypted
    assert caller.collect() == []  # no answer before the decision

    assert listener.verify_passphrase(event.handle, None) == 0
    assert listener.accept(event.handle, 1.2)
    (reply,) = caller.collect()
    _t, _s, _i, reply_destination, body = control_fields(reply)
    assert reply_destination == CALLER_ID
    response = hs.parse_handshake(body)
    assert response.hs_type == hs.CONCLUSION and response.version == 5
    assert response.socket_id == event.handle
    assert response.isn == ISN and response.mss == 1500
    assert response.extension & hs.EXT_FLAG_HSREQ
    options = hs.parse_srt_options(response.extension_block(hs.EXT_HSRSP))
    assert options.version >= 0x010300
    assert options.flags == 0x3F  # TSBPDSND|TSBPDRCV|CRYPT|TLPKTDROP|PERIODICNAK|REXMITFLG
    assert (options.recv_latency_ms, options.send_latency_ms) == (200, 200)  # larger side wins

    # repeats after the decision: the same bytes, and never a second connection
    caller.conclusion(1.5, destination=target)
    caller.conclusion(1.75, destination=target)
    assert caller.collect() == [reply, reply]
    assert listener.events() == [] and len(listener.connections) == 1


def test_latency_negotiation_takes_the_larger_side():
    listener = SrtListener(ListenerConfig(latency=0.3), rng=random.Random(1))
    caller = Caller(listener, latency_ms=80)
    caller.induction(0)
    caller.conclusion(0)
    (event,) = listener.events()
    listener.accept(event.handle, 0)
    response = hs.parse_handshake(caller.collect()[0][16:])
    options = hs.parse_srt_options(response.extension_block(hs.EXT_HSRSP))
    assert (options.recv_latency_ms, options.send_latency_ms) == (300, 300)
    assert listener.connections[event.handle].receiver.latency == pytest.approx(0.3)


def test_rejection_is_repeated_identically_and_opens_nothing(listener):
    caller = Caller(listener)
    caller.induction(0)
    caller.conclusion(0)
    (event,) = listener.events()
    listener.reject(event.handle, REJ_CONFLICT, 0.1)
    (reply,) = caller.collect()
    assert hs.parse_handshake(reply[16:]).hs_type == 2409
    caller.conclusion(0.3)
    assert caller.collect() == [reply]
    assert listener.connections == {} and not listener.accept(event.handle, 0.4)
    # forgotten after a while: a later attempt is a new request
    listener.handle_timer(10.0)
    caller.induction(10.0)
    caller.conclusion(10.0)
    assert len(listener.events()) == 1


def test_bad_cookie_is_rejected_without_state(listener):
    caller = Caller(listener)
    caller.induction(0)
    caller.cookie ^= 1
    caller.conclusion(0)
    (reply,) = caller.collect()
    assert hs.parse_handshake(reply[16:]).hs_type == REJ_ROGUE
    assert listener.events() == []


def test_cookie_of_the_previous_minute_is_accepted(listener):
    caller = Caller(listener)
    caller.induction(59.0)
    caller.conclusion(61.0)
    assert len(listener.events()) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"flags": 0xBF | hs.FLAG_STREAM}, REJ_MESSAGEAPI),
        ({"flags": 0xBE}, REJ_MESSAGEAPI),  # no TSBPDSND: not live mode
        ({"extra": [(hs.EXT_CONGESTION, hs.encode_stream_id("file"))]}, REJ_CONGESTION),
        ({"extra": [(hs.EXT_FILTER, hs.encode_stream_id("fec,cols:10"))]}, REJ_FILTER),
    ],
)
def test_unsupported_modes_are_rejected_with_their_code(listener, change, code):
    caller = Caller(listener)
    caller.induction(0)
    caller.conclusion(0, **change)
    (reply,) = caller.collect()
    assert hs.parse_handshake(reply[16:]).hs_type == code
    assert listener.events() == []


def test_live_congestion_block_is_fine(listener):
    caller = Caller(listener)
    caller.induction(0)
    caller.conclusion(0, extra=[(hs.EXT_CONGESTION, hs.encode_stream_id("live"))])
    assert len(listener.events()) == 1


def test_hsv4_conclusion_is_rejected_as_version(listener):
    caller = Caller(listener)
    caller.induction(0)
    request = hs.Handshake(4, 0, hs.UDT_DGRAM, ISN, 1500, 8192, hs.CONCLUSION, CALLER_ID,
                           caller.cookie)  # fmt: skip
    caller.send(pk.control_packet(pk.HANDSHAKE, 0, 0, 0, 0, request.encode()), 0)
    (reply,) = caller.collect()
    assert hs.parse_handshake(reply[16:]).hs_type == REJ_VERSION


def test_passphrase_decisions(listener):
    plain = Caller(listener, addr=("192.0.2.1", 1))
    plain.induction(0)
    plain.conclusion(0)
    encrypted = Caller(listener, addr=("192.0.2.2", 2), passphrase="correct horse")
    encrypted.induction(0)
    encrypted.conclusion(0)
    (to_plain, to_encrypted) = listener.events()
    assert not to_plain.encrypted and to_encrypted.encrypted
    assert listener.verify_passphrase(to_plain.handle, None) == 0
    assert listener.verify_passphrase(to_plain.handle, "a passphrase") == REJ_BADSECRET
    assert listener.verify_passphrase(to_encrypted.handle, None) == REJ_UNSECURE
    assert listener.verify_passphrase(to_encrypted.handle, "wrong horse") == REJ_BADSECRET
    assert listener.verify_passphrase(to_encrypted.handle, "correct horse") == 0
    assert listener.accept(to_encrypted.handle, 0)
    response = hs.parse_handshake(encrypted.collect()[0][16:])
    assert response.extension & hs.EXT_FLAG_KMREQ
    km = encrypted.conclusion_request().extension_block(hs.EXT_KMREQ)
    assert response.extension_block(hs.EXT_KMRSP) == km  # KMRSP echoes the key material


def test_accept_without_checking_an_encrypted_caller_refuses(listener):
    caller = Caller(listener, passphrase="correct horse")
    caller.induction(0)
    caller.conclusion(0)
    (event,) = listener.events()
    assert not listener.accept(event.handle, 0)
    assert hs.parse_handshake(caller.collect()[0][16:]).hs_type == REJ_BADSECRET


def test_undecided_conclusion_is_forgotten(listener):
    caller = Caller(listener)
    caller.induction(0)
    caller.conclusion(0)
    (event,) = listener.events()
    assert listener.get_timer() == pytest.approx(10.0)
    listener.handle_timer(10.0)
    assert not listener.accept(event.handle, 10.0)


def test_two_callers_from_one_address_are_two_connections(listener):
    first = Caller(listener, socket_id=11)
    second = Caller(listener, socket_id=12)
    first.connect(0)
    second.connect(0)
    assert len(listener.connections) == 2
    assert first.peer_id != second.peer_id
