"""The data path with a fake clock: ACK/ACKACK/RTT, NAKs, reordering, loss and
retransmission, too-late drop, wrap-around, keepalive, idle timeout, shutdown."""

from __future__ import annotations

import random

import pytest
from srt_testing import ISN, Caller, of_type

from live.protocols.srt import ConnectionClosed, DataReceived
from live.protocols.srt import packets as pk
from live.protocols.srt.connection import SHUTDOWN_GRACE
from live.protocols.srt.listener import SrtListener
from live.protocols.srt.receiver import Receiver
from live.protocols.srt.seqno import SEQ_MASK, seq_add

LATENCY = 0.120


def connected(isn: int = ISN, **kw) -> tuple[SrtListener, Caller, int]:
    listener = SrtListener(rng=random.Random(3))
    caller = Caller(listener, isn=isn, **kw)
    handle = caller.connect(0.0)
    return listener, caller, handle


def delivered(listener: SrtListener) -> bytes:
    return b"".join(e.data for e in listener.events() if isinstance(e, DataReceived))


def payload(i: int) -> bytes:
    return i.to_bytes(4, "big") * 329  # 1316 bytes, like 7 TS packets


def test_in_order_packets_are_delivered_at_their_tsbpd_time():
    listener, caller, _ = connected()
    for i in range(3):
        caller.data(ISN + i, i * 10_000, payload(i), now=i * 0.01)
    listener.handle_timer(0.02 + LATENCY - 0.001)
    assert delivered(listener) == payload(0) + payload(1)  # 0 ms and 10 ms are due
    listener.handle_timer(0.02 + LATENCY)
    assert delivered(listener) == payload(2)


def test_full_ack_every_10ms_and_rtt_from_ackack():
    listener, caller, handle = connected()
    caller.collect()
    caller.data(ISN, 0, payload(0), now=0.0)
    caller.data(ISN + 1, 1000, payload(1), now=0.001)
    assert listener.get_timer() == pytest.approx(0.0 + 0.0, abs=0.011)
    listener.handle_timer(0.005)
    (ack,) = of_type(caller.collect(), pk.ACK)
    _t, _s, ack_number, destination, body = ack
    assert ack_number == 1 and destination == caller.socket_id
    assert int.from_bytes(body[:4], "big") == ISN + 2  # first missing
    assert int.from_bytes(body[4:8], "big") == 100_000  # initial RTT 100 ms
    assert int.from_bytes(body[8:12], "big") == 50_000
    # nothing new: no second ACK 10 ms later once the ACKACK confirmed it
    caller.control(pk.ACKACK, 0.009, info=1)
    receiver = listener.connections[handle].receiver
    assert receiver.rtt == pytest.approx(0.004) and receiver.rtt_var == pytest.approx(0.002)
    listener.handle_timer(0.020)
    assert of_type(caller.collect(), pk.ACK) == []
    # new data: next ACK no earlier than 10 ms after the last
    caller.data(ISN + 2, 2000, payload(2), now=0.021)
    listener.handle_timer(0.021)
    (ack,) = of_type(caller.collect(), pk.ACK)
    assert ack[2] == 2 and int.from_bytes(ack[4][:4], "big") == ISN + 3
    caller.control(pk.ACKACK, 0.029, info=2)  # sample 8 ms
    assert receiver.rtt == pytest.approx(0.875 * 0.004 + 0.125 * 0.008)
    assert receiver.rtt_var == pytest.approx(0.75 * 0.002 + 0.25 * 0.004)


def test_gap_is_nakked_at_once_then_periodically_until_repaired():
    listener, caller, handle = connected(latency_ms=500)  # outlives the first NAK interval
    caller.collect()
    caller.data(ISN, 0, payload(0), now=0.0)
    caller.data(ISN + 4, 4000, payload(4), now=0.004)  # 1, 2, 3 lost
    (nak,) = of_type(caller.collect(), pk.NAK)
    assert pk.decode_loss_list(nak[4]) == [(ISN + 1, ISN + 3)]
    assert nak[4] == pk.encode_loss_list([(ISN + 1, ISN + 3)])
    caller.data(ISN + 2, 2000, payload(2), now=0.006, retransmitted=True)
    interval = listener.connections[handle].receiver.nak_interval
    assert interval == pytest.approx(min(max(0.02, (0.1 + 4 * 0.05) / 2), 0.5 / 4))
    listener.handle_timer(0.004 + interval)
    naks = of_type(caller.collect(), pk.NAK)
    assert [pk.decode_loss_list(n[4]) for n in naks] == [[(ISN + 1, ISN + 1), (ISN + 3, ISN + 3)]]
    caller.data(ISN + 1, 1000, payload(1), now=0.2, retransmitted=True)
    caller.data(ISN + 3, 3000, payload(3), now=0.2, retransmitted=True)
    listener.handle_timer(0.2)
    assert of_type(caller.collect(), pk.NAK) == []
    listener.handle_timer(1.0)
    assert delivered(listener) == b"".join(payload(i) for i in range(5))
    stats = listener.connections[handle].receiver.stats
    assert (stats.lost, stats.recovered, stats.dropped, stats.retransmitted) == (3, 3, 0, 3)


def test_a_lost_retransmission_is_asked_for_again_within_the_latency():
    # 120 ms latency, no RTT sample yet (the 100 ms guess would space NAKs 150 ms)
    listener, caller, handle = connected(latency_ms=120)
    caller.collect()
    caller.data(ISN, 0, payload(0), now=0.0)
    caller.data(ISN + 2, 2000, payload(2), now=0.002)  # 1 lost
    assert len(of_type(caller.collect(), pk.NAK)) == 1
    # the retransmission is lost too; the NAK goes out again after 30 ms
    listener.handle_timer(0.002 + 0.030)
    (nak,) = of_type(caller.collect(), pk.NAK)
    assert pk.decode_loss_list(nak[4]) == [(ISN + 1, ISN + 1)]
    caller.data(ISN + 1, 1000, payload(1), now=0.040, retransmitted=True)
    listener.handle_timer(0.5)
    assert delivered(listener) == b"".join(payload(i) for i in range(3))
    assert listener.connections[handle].receiver.stats.dropped == 0


def test_reordered_packets_come_out_in_order():
    listener, caller, _ = connected()
    order = [0, 2, 1, 4, 3, 5]
    for n, i in enumerate(order):
        caller.data(ISN + i, i * 1000, payload(i), now=n * 0.001)
    listener.handle_timer(1.0)
    assert delivered(listener) == b"".join(payload(i) for i in range(6))


def test_too_late_packet_is_dropped_and_ack_moves_past_it():
    listener, caller, handle = connected()
    caller.data(ISN, 0, payload(0), now=0.0)
    caller.data(ISN + 2, 20_000, payload(2), now=0.02)  # ISN+1 never comes
    listener.handle_timer(0.02 + LATENCY - 0.0001)
    assert delivered(listener) == payload(0)  # ISN+2 waits for ISN+1 until its own time
    receiver = listener.connections[handle].receiver
    assert receiver.ack_seq == ISN + 1
    listener.handle_timer(0.02 + LATENCY)
    assert delivered(listener) == payload(2)
    assert receiver.ack_seq == ISN + 3 and receiver.stats.dropped == 1
    caller.collect()
    listener.handle_timer(0.2)
    acks = of_type(caller.collect(), pk.ACK)
    assert int.from_bytes(acks[-1][4][:4], "big") == ISN + 3
    # the retransmission arriving now is too late and changes nothing
    caller.data(ISN + 1, 10_000, payload(1), now=0.25, retransmitted=True)
    listener.handle_timer(0.3)
    assert delivered(listener) == b"" and receiver.stats.belated == 1


def test_sequence_numbers_wrap_at_31_bits():
    isn = SEQ_MASK - 2
    listener, caller, handle = connected(isn=isn)
    caller.collect()
    seqs = [seq_add(isn, i) for i in range(6)]
    assert seqs[3] == 0
    for i, seq in enumerate(seqs):
        if i != 3:
            caller.data(seq, i * 1000, payload(i), now=i * 0.001)
    (nak,) = of_type(caller.collect(), pk.NAK)
    assert pk.decode_loss_list(nak[4]) == [(0, 0)]
    caller.data(0, 3000, payload(3), now=0.01, retransmitted=True)
    listener.handle_timer(1.0)
    assert delivered(listener) == b"".join(payload(i) for i in range(6))
    assert listener.connections[handle].receiver.ack_seq == seq_add(isn, 6)


def test_timestamps_wrap_at_32_bits():
    start = 2**32 - 30_000  # 30 ms before the µs clock wraps
    listener = SrtListener(rng=random.Random(5))
    caller = Caller(listener)
    caller.induction(0)
    caller.conclusion(0.0, timestamp=start)
    (event,) = listener.events()
    listener.accept(event.handle, 0.0)
    caller.peer_id = event.handle
    for i in range(6):  # one every 20 ms: the 3rd wraps to a small value
        ts = (start + i * 20_000) % 2**32
        caller.data(ISN + i, ts, payload(i), now=i * 0.02)
    receiver = listener.connections[event.handle].receiver
    plays = [receiver.buffer[ISN + i][0] for i in range(6)]
    assert plays == pytest.approx([LATENCY + i * 0.02 for i in range(6)])
    listener.handle_timer(LATENCY + 0.2)
    assert delivered(listener) == b"".join(payload(i) for i in range(6))


def test_keepalive_after_a_second_of_silence_and_idle_timeout():
    listener, caller, handle = connected()
    caller.collect()
    listener.handle_timer(1.0)
    assert len(of_type(caller.collect(), pk.KEEPALIVE)) == 1
    caller.control(pk.KEEPALIVE, 3.0)
    listener.handle_timer(7.9)
    assert handle in listener.connections
    assert listener.get_timer() <= 8.0
    listener.handle_timer(8.0)
    assert handle not in listener.connections
    assert ConnectionClosed(handle, "timeout") in listener.events()


def test_shutdown_ends_the_connection_after_delivering_what_was_sent():
    listener, caller, handle = connected()
    for i in (0, 1, 3):  # 2 is lost, and will not come any more
        caller.data(ISN + i, 490_000 + i * 1000, payload(i), now=0.49)
    caller.control(pk.SHUTDOWN, 0.5)  # before the packets' delivery time
    assert listener.events() == []  # what is still on its way may overtake it
    listener.handle_timer(0.5 + SHUTDOWN_GRACE)
    assert listener.events() == [
        DataReceived(handle, payload(0) + payload(1) + payload(3)),
        ConnectionClosed(handle, "shutdown"),
    ]
    assert listener.connections == {}
    caller.data(ISN, 0, payload(0), now=0.6)  # nothing for it any more
    assert listener.stats.stray == 1


def test_data_that_a_shutdown_overtook_still_counts():
    """A reordering link delivers the SHUTDOWN before the last packet, and a late
    original after it: both are part of the stream."""
    listener, caller, handle = connected()
    caller.data(ISN, 0, payload(0), now=0.0)
    caller.data(ISN + 2, 2000, payload(2), now=0.002)  # 1 is late
    caller.collect()
    caller.control(pk.SHUTDOWN, 0.003)  # overtook 3
    caller.data(ISN + 1, 1000, payload(1), now=0.004)
    caller.data(ISN + 3, 3000, payload(3), now=0.005)
    assert listener.get_timer() == pytest.approx(0.003 + SHUTDOWN_GRACE)
    listener.handle_timer(0.003 + SHUTDOWN_GRACE)
    assert listener.events() == [
        DataReceived(handle, b"".join(payload(i) for i in range(4))),
        ConnectionClosed(handle, "shutdown"),
    ]
    assert of_type(caller.collect(), pk.NAK) == []  # nobody is there to resend


def test_adapter_close_sends_shutdown():
    listener, caller, handle = connected()
    caller.collect()
    listener.close(handle, 1.0)
    assert len(of_type(caller.collect(), pk.SHUTDOWN)) == 1
    assert ConnectionClosed(handle, "closed") in listener.events()


def test_dropreq_stops_nakking_the_range():
    listener, caller, _ = connected()
    caller.data(ISN, 0, payload(0), now=0.0)
    caller.data(ISN + 5, 5000, payload(5), now=0.005)
    caller.collect()
    body = (ISN + 1).to_bytes(4, "big") + (ISN + 4).to_bytes(4, "big")
    caller.control(pk.DROPREQ, 0.006, body=body)
    listener.handle_timer(0.1)
    assert of_type(caller.collect(), pk.NAK) == []
    listener.handle_timer(1.0)
    assert delivered(listener) == payload(0) + payload(5)


def test_packets_from_another_address_are_ignored():
    listener, _, handle = connected()
    listener.receive_datagram(pk.data_packet(ISN, 0, handle, b"x"), ("198.51.100.1", 9), 0.0)
    assert listener.stats.stray == 1
    assert listener.connections[handle].receiver.stats.packets == 0


def test_receive_window_bounds_the_buffer():
    receiver = Receiver(0, latency=0.12, time_base=0.0, capacity=16)
    assert receiver.on_data(16, 0, b"x", 0.0) == []
    assert receiver.stats.overflow == 1 and receiver.buffer == {}


def test_the_keepalive_timer_does_its_work_exactly_at_the_time_it_reports():
    # Found by fuzzing (fuzz/srt.py): with the last packet sent at 1.01 s, get_timer
    # said 2.01 but handle_timer(2.01) sent nothing (2.01 - 1.01 < 1.0 in floating
    # point), so a driver firing at the deadline was woken again and again.
    listener, caller, _ = connected()
    listener.handle_timer(1.01)  # the first keepalive
    caller.collect()
    deadline = listener.get_timer()
    assert deadline == 1.01 + 1.0
    listener.handle_timer(deadline)
    assert len(of_type(caller.collect(), pk.KEEPALIVE)) == 1
    assert listener.get_timer() > deadline
