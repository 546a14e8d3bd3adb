"""The SRT listener: datagrams, handshakes and their extensions (stream ID, key
material), control packets and the receive buffer, encrypted payloads included.

The input is a recording of the datagrams one caller sent: records of a 16-bit
length, the milliseconds since the previous datagram (one byte) and the datagram.
They go into a fresh `SrtListener` (fixed random seed, so its socket IDs and SYN
cookie are those the recorded conclusions carry) with the clock advanced and the
listener's timers fired as the server's loop would. A caller asking to publish is
accepted like a good stream key: one whose stream has `PASSPHRASE` if the caller
encrypts, and none if it does not. When the input
ends, time runs on until every connection has timed out.

The listener promises that nothing a peer sends raises out of `receive_datagram`;
any exception is a finding, and so are a receive buffer or loss list larger than
the receive window, a timer that does nothing when it fires at its deadline (the
first run found one: tests/protocols/srt/test_srt_receiver.py) and a connection
that outlives its timeouts.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Iterator
from typing import Final

from fuzz import Finding
from live.protocols.srt import (
    ConnectionRequested,
    DataReceived,
    ListenerConfig,
    SrtListener,
    crypto,
)
from live.protocols.srt.listener import PENDING_TIMEOUT

PEER: Final = ("192.0.2.10", 40000)
PASSPHRASE: Final = "fuzzing-passphrase"
RNG_SEED: Final = 1
WINDOW: Final = 64  # packets; small, so that filling it takes few inputs
_RECORD: Final = struct.Struct(">HB")

# PBKDF2 (2,048 rounds) would be most of the time of every encrypted input, for the
# few salts the seeds carry: its result, a pure function of its arguments, is kept.
crypto.derive_kek = functools.lru_cache(maxsize=256)(crypto.derive_kek)
# After the input: how long the timers are followed one by one (deliveries, ACKs,
# NAKs and keepalives), before time jumps past every timeout.
_DRAIN_S: Final = 0.5


def encode(datagrams: list[tuple[float, bytes]]) -> bytes:
    """(seconds since the previous datagram, datagram) pairs → one fuzz input."""
    out = bytearray()
    for delay, datagram in datagrams:
        out += _RECORD.pack(len(datagram), min(255, round(delay * 1000))) + datagram
    return bytes(out)


def decode(data: bytes) -> Iterator[tuple[float, bytes]]:
    offset = 0
    while offset + _RECORD.size <= len(data):
        length, delay_ms = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        yield delay_ms / 1000, data[offset : offset + length]
        offset += length


def new_listener() -> SrtListener:
    return SrtListener(ListenerConfig(receive_window=WINDOW), rng=random.Random(RNG_SEED))


def decide(listener: SrtListener, now: float) -> list[bytes]:
    """Answer every caller waiting for a decision, as the ingest server does; the
    payloads delivered meanwhile."""
    delivered = []
    for event in listener.events():
        if isinstance(event, DataReceived):
            delivered.append(event.data)
        elif isinstance(event, ConnectionRequested):
            passphrase = PASSPHRASE if event.encrypted else None
            code = listener.verify_passphrase(event.handle, passphrase)
            if code:
                listener.reject(event.handle, code, now)
            else:
                listener.accept(event.handle, now)
    return delivered


def check_limits(listener: SrtListener) -> None:
    for connection in listener.connections.values():
        receiver = connection.receiver
        if len(receiver.buffer) > WINDOW or len(receiver.loss) > WINDOW:
            raise Finding(
                f"{len(receiver.buffer)} packets buffered and {len(receiver.loss)} "
                f"missing, window {WINDOW}"
            )


def run(data: bytes) -> list[bytes]:
    """Everything the listener delivered for this input, in order."""
    listener = new_listener()
    delivered: list[bytes] = []
    now = 0.0
    for delay, datagram in decode(data):
        now += delay
        deadline = listener.get_timer()
        if deadline is not None and deadline <= now:
            listener.handle_timer(now)
        listener.receive_datagram(datagram, PEER, now)
        delivered += decide(listener, now)
        listener.datagrams_to_send()  # the replies: nobody reads them here
        check_limits(listener)
    # The caller falls silent: each timer up to a second on must do its work when
    # it fires (deliveries, ACKs, NAKs, keepalives) ...
    end = now + _DRAIN_S
    while (deadline := listener.get_timer()) is not None and deadline <= end:
        now = max(now, deadline)
        listener.handle_timer(now)
        delivered += decide(listener, now)
        listener.datagrams_to_send()
        check_limits(listener)
        if listener.get_timer() == now:
            raise Finding(f"the timer due at {now} s does nothing when it fires")
    # ... and once every timeout has passed, nothing is left.
    now = end + PENDING_TIMEOUT + listener.config.idle_timeout
    listener.handle_timer(now)
    delivered += decide(listener, now)
    if listener.connections or listener.get_timer() is not None:
        raise Finding(f"{len(listener.connections)} connections outlived every timeout")
    return delivered


def check(data: bytes) -> None:
    run(data)
