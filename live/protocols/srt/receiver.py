"""The receiving half of one SRT connection: buffer, loss list, ACK/NAK, TSBPD.

Pure bookkeeping over sequence numbers and a clock passed in (seconds, any
monotonic origin). Between `base` (the next packet to deliver) and `next` (one past
the highest received) every sequence number is either in `buffer` or in `loss`;
that invariant is what makes delivery, dropping and acknowledging simple.

- A gap in arriving numbers is a loss, reported at once in a NAK (§4.8.1) and again
  every max(20 ms, (RTT + 4·RTTVar)/2), at most a quarter of the latency, while it
  is missing (periodic NAK, §4.8.2).
- Each packet is delivered at its TSBPD time: time base + timestamp + latency
  (§4.5). A missing packet holds back the ones after it until the first of them is
  due; then it is given up for good ("too-late drop", §4.6) and the ACK moves past it.
- A full ACK goes out every 10 ms while there is news (§4.8.1); the ACKACK the
  sender answers with gives an RTT sample (§4.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .seqno import seq_add, seq_diff

ACK_INTERVAL: Final = 0.010
MIN_NAK_INTERVAL: Final = 0.020
NAK_ROUNDS_PER_LATENCY: Final = 4
ACK_HISTORY: Final = 1024
MAX_NAK_RANGES: Final = 170  # keeps a NAK under 1400 bytes
_TS_WRAP: Final = 1 << 32
_TS_HALF: Final = 1 << 31
_INF: Final = float("inf")


@dataclass(slots=True)
class ReceiverStats:
    packets: int = 0
    bytes: int = 0
    retransmitted: int = 0
    lost: int = 0  # found missing (each sequence number once)
    recovered: int = 0  # arrived after being found missing
    dropped: int = 0  # given up at their delivery time
    duplicate: int = 0
    belated: int = 0  # arrived after their slot was delivered or given up
    overflow: int = 0  # beyond the receive window


@dataclass(frozen=True, slots=True)
class AckInfo:
    number: int
    ack_seq: int
    rtt_us: int
    rtt_var_us: int
    buffer_free: int
    packet_rate: int
    byte_rate: int


class Receiver:
    def __init__(
        self,
        isn: int,
        *,
        latency: float,
        time_base: float,
        first_timestamp: int = 0,
        capacity: int = 8192,
        now: float = 0.0,
    ) -> None:
        self.base = isn
        self.next = isn
        self.latency = latency
        self.time_base = time_base
        self.capacity = capacity
        self.buffer: dict[int, tuple[float, bytes]] = {}
        self.loss: dict[int, float] = {}  # seq → when last NAKed, kept in seq order
        self.rtt = 0.1
        self.rtt_var = 0.05
        self._rtt_measured = False
        self.ack_number = 0
        self._acks: dict[int, tuple[float, int]] = {}  # ACK number → (sent at, ack seq)
        self.last_ack_seq = isn
        self.last_ackack_seq = isn
        self.last_ack_time = now - ACK_INTERVAL
        self.next_nak_time = _INF
        self._ts_last = first_timestamp  # extended (unwrapped) µs
        self._rate_since = now
        self._rate_packets = 0
        self._rate_bytes = 0
        self.packet_rate = 0
        self.byte_rate = 0
        self.stats = ReceiverStats()

    # -- arrival -----------------------------------------------------------------------

    def on_data(
        self, seq: int, timestamp: int, payload: bytes, now: float, retransmitted: bool = False
    ) -> list[tuple[int, int]]:
        """Store one data packet; return the ranges to NAK right now (a new gap)."""
        stats = self.stats
        stats.packets += 1
        stats.bytes += len(payload)
        self._rate_packets += 1
        self._rate_bytes += len(payload)
        if retransmitted:
            stats.retransmitted += 1
        offset = seq_diff(self.base, seq)
        if offset < 0:
            stats.belated += 1
            return []
        if offset >= self.capacity:
            stats.overflow += 1
            return []
        nak: list[tuple[int, int]] = []
        ahead = seq_diff(self.next, seq)
        if ahead >= 0:
            if ahead > 0:
                for i in range(ahead):
                    self.loss[seq_add(self.next, i)] = now
                stats.lost += ahead
                nak.append((self.next, seq_add(seq, -1)))
                if self.next_nak_time == _INF:
                    self.next_nak_time = now + self.nak_interval
            self.next = seq_add(seq, 1)
        elif self.loss.pop(seq, None) is not None:
            stats.recovered += 1
            if not self.loss:
                self.next_nak_time = _INF
        else:
            stats.duplicate += 1
            return []
        play = self.time_base + self._extend(timestamp) / 1e6 + self.latency
        self.buffer[seq] = (play, payload)
        return nak

    def _extend(self, timestamp: int) -> int:
        """The 32-bit µs timestamp as a 64-bit one, continuing across its wrap."""
        last = self._ts_last
        value = (last - (last % _TS_WRAP)) + timestamp
        if value - last < -_TS_HALF:
            value += _TS_WRAP
        elif value - last > _TS_HALF:
            value -= _TS_WRAP
        if value > last:
            self._ts_last = value
        return value

    def drop_request(self, first: int, last: int) -> None:
        """The sender gave up on [first, last]: stop asking for them."""
        count = seq_diff(first, last) + 1
        if count <= 0 or count > self.capacity:
            return
        for i in range(count):
            seq = seq_add(first, i)
            if seq in self.loss:
                self.loss[seq] = _INF

    # -- delivery ----------------------------------------------------------------------

    def deliver(self, now: float) -> list[bytes]:
        """Payloads whose delivery time has come, in order, dropping what is too late."""
        out: list[bytes] = []
        buffer = self.buffer
        while True:
            entry = buffer.get(self.base)
            if entry is None:
                after = self._first_after_hole()
                if after is None or buffer[after][0] > now:
                    break
                for i in range(seq_diff(self.base, after)):
                    if self.loss.pop(seq_add(self.base, i), None) is not None:
                        self.stats.dropped += 1
                if not self.loss:
                    self.next_nak_time = _INF
                self.base = after
                continue
            if entry[0] > now:
                break
            out.append(entry[1])
            del buffer[self.base]
            self.base = seq_add(self.base, 1)
        return out

    def flush(self) -> list[bytes]:
        """Everything still buffered, in order, skipping what never came (the peer
        has closed: nothing more will arrive, and nothing should wait)."""
        out = [self.buffer.pop(seq)[1] for seq in sorted(self.buffer, key=self._offset)]
        self.stats.dropped += len(self.loss)
        self.loss.clear()
        self.next_nak_time = _INF
        self.base = self.next
        return out

    def _offset(self, seq: int) -> int:
        return seq_diff(self.base, seq)

    def _first_after_hole(self) -> int | None:
        """The first received packet after the missing run at `base`, if any."""
        seq = self.base
        loss = self.loss
        while seq in loss:
            seq = seq_add(seq, 1)
        if seq == self.next or seq == self.base:
            return None
        return seq

    def delivery_deadline(self) -> float | None:
        entry = self.buffer.get(self.base)
        if entry is not None:
            return entry[0]
        after = self._first_after_hole()
        return None if after is None else self.buffer[after][0]

    # -- acknowledgement -----------------------------------------------------------------

    @property
    def ack_seq(self) -> int:
        """The first sequence number not received (everything before it is)."""
        for seq in self.loss:
            return seq
        return self.next

    def ack_deadline(self) -> float | None:
        ack = self.ack_seq
        if ack != self.last_ack_seq:
            return self.last_ack_time + ACK_INTERVAL
        if ack == self.last_ackack_seq:
            return None
        return self.last_ack_time + max(ACK_INTERVAL, 2 * self.rtt)

    def make_ack(self, now: float) -> AckInfo:
        ack = self.ack_seq
        self.ack_number = (self.ack_number % 0x7FFFFFFF) + 1
        self._acks[self.ack_number] = (now, ack)
        if len(self._acks) > ACK_HISTORY:
            del self._acks[next(iter(self._acks))]
        self.last_ack_seq = ack
        self.last_ack_time = now
        elapsed = now - self._rate_since
        if elapsed >= 0.1:
            self.packet_rate = int(self._rate_packets / elapsed)
            self.byte_rate = int(self._rate_bytes / elapsed)
            self._rate_packets = self._rate_bytes = 0
            self._rate_since = now
        return AckInfo(
            self.ack_number,
            ack,
            int(self.rtt * 1e6),
            int(self.rtt_var * 1e6),
            self.capacity - len(self.buffer),
            self.packet_rate,
            self.byte_rate,
        )

    def on_ackack(self, ack_number: int, now: float) -> None:
        sent = self._acks.pop(ack_number, None)
        if sent is None:
            return
        sent_at, ack_seq = sent
        sample = max(0.0, now - sent_at)
        if not self._rtt_measured:
            self._rtt_measured = True
            self.rtt, self.rtt_var = sample, sample / 2
        else:
            self.rtt_var = 0.75 * self.rtt_var + 0.25 * abs(self.rtt - sample)
            self.rtt = 0.875 * self.rtt + 0.125 * sample
        if seq_diff(self.last_ackack_seq, ack_seq) > 0:
            self.last_ackack_seq = ack_seq

    # -- loss reports ------------------------------------------------------------------

    @property
    def nak_interval(self) -> float:
        """max(20 ms, (RTT + 4·RTTVar)/2) as §4.8.2 has it, but never more than a
        quarter of the latency: a NAK or retransmission that is itself lost must be
        asked for again while the packet can still be delivered. One stalled ACKACK
        (or the 100 ms guess before the first) would otherwise stretch the interval
        to most of the latency, and a second loss of the same packet would then be
        final."""
        by_rtt = max(MIN_NAK_INTERVAL, (self.rtt + 4 * self.rtt_var) / 2)
        return min(by_rtt, max(MIN_NAK_INTERVAL, self.latency / NAK_ROUNDS_PER_LATENCY))

    def periodic_nak(self, now: float) -> list[tuple[int, int]]:
        """Ranges still missing and not asked for within the NAK interval."""
        if now < self.next_nak_time:
            return []
        interval = self.nak_interval
        if not self.loss:
            self.next_nak_time = _INF
            return []
        self.next_nak_time = now + interval
        cutoff = now - interval + 1e-9
        ranges: list[tuple[int, int]] = []
        loss = self.loss
        for seq, asked in loss.items():
            if asked > cutoff:
                continue
            loss[seq] = now
            if ranges and seq == seq_add(ranges[-1][1], 1):
                ranges[-1] = (ranges[-1][0], seq)
            elif len(ranges) < MAX_NAK_RANGES:
                ranges.append((seq, seq))
            else:
                loss[seq] = asked  # not sent this time
        return ranges

    def deadline(self) -> float | None:
        """The earliest time `deliver`, `make_ack` or `periodic_nak` has work."""
        times = [t for t in (self.delivery_deadline(), self.ack_deadline()) if t is not None]
        if self.next_nak_time != _INF:
            times.append(self.next_nak_time)
        return min(times) if times else None
