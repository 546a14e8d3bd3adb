"""One established SRT connection (live mode, receiving): control traffic and timers.

The listener hands it the packets addressed to its socket ID; it keeps the
receiver fed, answers with ACK/NAK/KEEPALIVE/KMRSP, decrypts payloads and notices
the end (SHUTDOWN, or 5 s of silence from the peer).
"""

from __future__ import annotations

import struct
from typing import Final

from . import packets as pk
from .crypto import BadSecret, Crypto, KeyMaterial, aes_ctr, parse_key_material, unwrap_keys
from .packets import PacketError
from .receiver import Receiver

KEEPALIVE_INTERVAL: Final = 1.0
PEER_IDLE_TIMEOUT: Final = 5.0
# After the peer's SHUTDOWN, how long datagrams it sent before still count. A link
# that reorders can deliver the SHUTDOWN ahead of the last data packets (or of a
# late original); closing at once would cut the stream's last frame short, and a
# frame cut at its end is damage no continuity counter reveals.
SHUTDOWN_GRACE: Final = 0.05
_PAD: Final = b"\x00\x00\x00\x00"


class SrtConnection:
    def __init__(
        self,
        *,
        socket_id: int,
        peer: tuple[str, int],
        peer_socket_id: int,
        isn: int,
        latency: float,
        time_base: float,
        first_timestamp: int,
        now: float,
        crypto: Crypto | None = None,
        capacity: int = 8192,
        idle_timeout: float = PEER_IDLE_TIMEOUT,
    ) -> None:
        self.socket_id = socket_id
        self.peer = peer
        self.peer_socket_id = peer_socket_id
        self.started = now
        self.crypto = crypto
        self.idle_timeout = idle_timeout
        self.receiver = Receiver(
            isn,
            latency=latency,
            time_base=time_base,
            first_timestamp=first_timestamp,
            capacity=capacity,
            now=now,
        )
        self.last_received = now
        self.last_sent = now
        self.closed: str | None = None
        self.shutdown_at: float | None = None  # when the peer's SHUTDOWN came
        self.undecryptable = 0
        self._outbox: list[bytes] = []
        self._delivered: list[bytes] = []

    # -- input -------------------------------------------------------------------------

    def on_data(self, first: int, second: int, timestamp: int, payload: bytes, now: float) -> None:
        self.last_received = now
        key_index = (second >> pk.KK_SHIFT) & pk.KK_MASK
        if key_index:
            key = self.crypto.keys.get(key_index) if self.crypto else None
            if key is None or self.crypto is None:
                self.undecryptable += 1
                return
            payload = aes_ctr(key, self.crypto.salt, first, payload)
        nak = self.receiver.on_data(
            first, timestamp, payload, now, bool(second & pk.RETRANSMITTED_BIT)
        )
        if nak and self.shutdown_at is None:  # a peer that has left resends nothing
            self._send(pk.NAK, 0, 0, now, pk.encode_loss_list(nak))
        if self.receiver.buffer.get(self.receiver.base, (now + 1.0,))[0] <= now:
            self._deliver(now)  # late arrivals whose time has already come

    def on_control(
        self, control_type: int, subtype: int, info: int, body: bytes, now: float
    ) -> None:
        self.last_received = now
        if control_type == pk.ACKACK:
            self.receiver.on_ackack(info, now)
        elif control_type == pk.SHUTDOWN:
            if self.shutdown_at is None:
                self.shutdown_at = now  # closes after the grace, see handle_timer
        elif control_type == pk.DROPREQ:
            if len(body) >= 8:
                first, last = struct.unpack_from(">II", body)
                self.receiver.drop_request(first & 0x7FFFFFFF, last & 0x7FFFFFFF)
        elif control_type == pk.USER_DEFINED and subtype == pk.EXT_KMREQ:
            self._on_key_refresh(body, now)
        # KEEPALIVE only refreshes last_received; ACK/NAK concern data we never send.

    def _on_key_refresh(self, body: bytes, now: float) -> None:
        """A sender's periodic new key (announced before it switches to it)."""
        if self.crypto is None:
            return
        try:
            km: KeyMaterial = parse_key_material(body)
            keys = unwrap_keys(km, self.crypto.passphrase)
        except (PacketError, BadSecret):
            self._send(pk.USER_DEFINED, pk.EXT_KMRSP, 0, now, struct.pack(">I", 4))
            return
        self.crypto.salt = km.salt
        self.crypto.keys.update(keys)
        self._send(pk.USER_DEFINED, pk.EXT_KMRSP, 0, now, km.raw)

    # -- time ----------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        if self.closed:
            return
        if self.shutdown_at is not None:
            if now >= self.shutdown_at + SHUTDOWN_GRACE:
                self._delivered.extend(self.receiver.flush())  # what it sent before leaving
                self.closed = "shutdown"
            return
        # Deadlines are compared in the form get_timer reports them: `now - last`
        # can fall a rounding error short at exactly `last + interval`, and a timer
        # that fires at its deadline and finds nothing to do fires again at once.
        if now >= self.last_received + self.idle_timeout:
            self.closed = "timeout"
            return
        receiver = self.receiver
        deadline = receiver.delivery_deadline()
        if deadline is not None and deadline <= now:
            self._deliver(now)
        ack_at = receiver.ack_deadline()
        if ack_at is not None and ack_at <= now:
            ack = receiver.make_ack(now)
            self._outbox.append(
                pk.full_ack(
                    ack.number,
                    self._timestamp(now),
                    self.peer_socket_id,
                    ack_seq=ack.ack_seq,
                    rtt_us=ack.rtt_us,
                    rtt_var_us=ack.rtt_var_us,
                    buffer_free=ack.buffer_free,
                    packet_rate=ack.packet_rate,
                    capacity=ack.packet_rate,
                    byte_rate=ack.byte_rate,
                )
            )
            self.last_sent = now
        nak = receiver.periodic_nak(now)
        if nak:
            self._send(pk.NAK, 0, 0, now, pk.encode_loss_list(nak))
        if now >= self.last_sent + KEEPALIVE_INTERVAL:
            self._send(pk.KEEPALIVE, 0, 0, now, _PAD)

    def _deliver(self, now: float) -> None:
        self._delivered.extend(self.receiver.deliver(now))

    def get_timer(self) -> float | None:
        if self.closed:
            return None
        if self.shutdown_at is not None:
            return self.shutdown_at + SHUTDOWN_GRACE
        times = [self.last_received + self.idle_timeout, self.last_sent + KEEPALIVE_INTERVAL]
        receiver = self.receiver
        deliver = receiver.delivery_deadline()
        if deliver is not None:
            times.append(deliver)
        ack = receiver.ack_deadline()
        if ack is not None:
            times.append(ack)
        if receiver.next_nak_time != float("inf"):
            times.append(receiver.next_nak_time)
        return min(times)

    def counts(self) -> dict[str, int]:
        stats = self.receiver.stats
        return {
            "packets_received": stats.packets,
            "packets_retransmitted": stats.retransmitted,
            "packets_lost": stats.lost,
            "packets_recovered": stats.recovered,
            "packets_dropped": stats.dropped,
            "packets_belated": stats.belated,
            "packets_undecryptable": self.undecryptable,
        }

    # -- output --------------------------------------------------------------------------

    def shutdown(self, now: float) -> None:
        if not self.closed:
            self._send(pk.SHUTDOWN, 0, 0, now, _PAD)
            self.closed = "closed"

    def _timestamp(self, now: float) -> int:
        return int((now - self.started) * 1e6) & 0xFFFFFFFF

    def _send(self, control_type: int, subtype: int, info: int, now: float, body: bytes) -> None:
        self._outbox.append(
            pk.control_packet(
                control_type, subtype, info, self._timestamp(now), self.peer_socket_id, body
            )
        )
        self.last_sent = now

    def take_datagrams(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def take_delivered(self) -> list[bytes]:
        out, self._delivered = self._delivered, []
        return out
