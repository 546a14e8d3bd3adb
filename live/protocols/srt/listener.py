"""A sans-I/O SRT listener: every datagram of one UDP port in, events and datagrams out.

It answers inductions statelessly (a SYN cookie from address, port and minute),
turns a valid conclusion into one `ConnectionRequested` and waits for the adapter's
`accept`/`reject`, demultiplexes established connections by destination socket ID
(checked against the peer address) and drives their timers.

Repeated conclusions (the caller resends every 250 ms until answered) never make a
second connection: they are absorbed while the decision is pending and answered
with the very same bytes once it is made. Malformed datagrams are counted in
`stats` and dropped; nothing a peer sends can raise out of `receive_datagram`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import struct
from dataclasses import dataclass, field
from typing import Final

from . import handshake as hs
from . import packets as pk
from .connection import SrtConnection
from .crypto import BadSecret, Crypto, KeyMaterial, parse_key_material, unwrap_keys
from .events import ConnectionClosed, ConnectionRequested, DataReceived, SrtEvent
from .packets import PacketError
from .streamid import parse_stream_id

# Rejection codes: the handshake type a rejected caller receives (1000 + reason).
REJ_ROGUE: Final = 1004
REJ_VERSION: Final = 1008
REJ_BADSECRET: Final = 1010
REJ_UNSECURE: Final = 1011
REJ_MESSAGEAPI: Final = 1012
REJ_CONGESTION: Final = 1013
REJ_FILTER: Final = 1014
REJ_GROUP: Final = 1015
# Application codes (1000 + SRT_REJX_*): HTTP-like.
REJ_UNAUTHORIZED: Final = 2401
REJ_FORBIDDEN: Final = 2403
REJ_NOT_FOUND: Final = 2404
REJ_BAD_MODE: Final = 2405
REJ_CONFLICT: Final = 2409
REJ_OVERLOAD: Final = 2503  # too many handshakes waiting for an answer

SRT_VERSION: Final = 0x010503
HSRSP_FLAGS: Final = 0x3F
MAX_MSS: Final = 1500
FLOW_WINDOW: Final = 8192
PENDING_TIMEOUT: Final = 10.0  # an undecided conclusion is forgotten after this
REJECTED_MEMORY: Final = 5.0  # a rejection is repeated to resends for this long


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    latency: float = 0.120  # our receiving latency; the larger side wins
    idle_timeout: float = 5.0
    receive_window: int = 8192


@dataclass(slots=True)
class _Pending:
    handle: int
    peer: tuple[str, int]
    handshake: hs.Handshake
    options: hs.SrtOptions
    key_material: KeyMaterial | None
    received_at: float
    timestamp: int
    crypto: Crypto | None = None
    response: bytes | None = None  # once decided: what every resend gets
    decided_at: float = 0.0


@dataclass(slots=True)
class ListenerStats:
    malformed: int = 0
    stray: int = 0  # well-formed but for no connection of ours
    inductions: int = 0
    conclusions: int = 0
    accepted: int = 0
    rejected: int = 0
    # bad cookies, and the packet counts of connections that have closed
    counters: dict[str, int] = field(default_factory=dict)


class SrtListener:
    def __init__(
        self, config: ListenerConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.config = config or ListenerConfig()
        self._rng = rng or random.SystemRandom()
        self._secret = self._rng.getrandbits(256).to_bytes(32, "big")
        self.connections: dict[int, SrtConnection] = {}
        self._pending: dict[int, _Pending] = {}
        self.listener_id = self._new_id()
        self._by_caller: dict[tuple[tuple[str, int], int], _Pending] = {}
        self._events: list[SrtEvent] = []
        self._outbox: list[tuple[bytes, tuple[str, int]]] = []
        self.stats = ListenerStats()

    # -- input -------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        if len(data) < pk.HEADER_SIZE:
            self.stats.malformed += 1
            return
        first, second, timestamp, destination = pk.HEADER.unpack_from(data)
        if not first & pk.CONTROL_BIT:
            connection = self.connections.get(destination)
            if connection is None or connection.peer != addr:
                self.stats.stray += 1
                return
            connection.on_data(first, second, timestamp, data[pk.HEADER_SIZE :], now)
            self._collect(connection, now)
            return
        control_type = (first >> 16) & 0x7FFF
        if control_type == pk.HANDSHAKE:
            try:
                self._on_handshake(data, addr, timestamp, now)
            except PacketError:
                self.stats.malformed += 1
            return
        connection = self.connections.get(destination)
        if connection is None or connection.peer != addr:
            self.stats.stray += 1
            return
        connection.on_control(control_type, first & 0xFFFF, second, data[pk.HEADER_SIZE :], now)
        self._collect(connection, now)

    def _on_handshake(self, data: bytes, addr: tuple[str, int], timestamp: int, now: float) -> None:
        request = hs.parse_handshake(data[pk.HEADER_SIZE :])
        if request.hs_type == hs.INDUCTION:
            self.stats.inductions += 1
            self._answer_induction(request, addr, now)
        elif request.hs_type == hs.CONCLUSION:
            self.stats.conclusions += 1
            self._on_conclusion(request, addr, timestamp, now)
        else:
            self.stats.stray += 1  # rendezvous (waveahand, agreement) is not served

    def _answer_induction(self, request: hs.Handshake, addr: tuple[str, int], now: float) -> None:
        response = hs.Handshake(
            version=5,
            encryption=0,
            extension=hs.SRT_MAGIC,
            isn=request.isn,
            mss=min(request.mss, MAX_MSS) or MAX_MSS,
            flow_window=FLOW_WINDOW,
            hs_type=hs.INDUCTION,
            socket_id=self.listener_id,
            cookie=self._cookie(addr, int(now // 60)),
            peer_ip=hs.ip_field(addr[0]),
        )
        self._send_handshake(response, request.socket_id, addr)

    def _on_conclusion(
        self, request: hs.Handshake, addr: tuple[str, int], timestamp: int, now: float
    ) -> None:
        known = self._by_caller.get((addr, request.socket_id))
        if known is not None:
            if known.response is not None:  # decided: the same answer again
                self._outbox.append((known.response, addr))
            return  # undecided: the adapter is still thinking
        minute = int(now // 60)
        if request.cookie not in (self._cookie(addr, minute), self._cookie(addr, minute - 1)):
            self.stats.counters["bad_cookie"] = self.stats.counters.get("bad_cookie", 0) + 1
            self._send_handshake(self._rejection(request, REJ_ROGUE, addr), request.socket_id, addr)
            return
        code, options, key_material, stream_id = self._check_conclusion(request)
        if code:
            self.stats.rejected += 1
            self._send_handshake(self._rejection(request, code, addr), request.socket_id, addr)
            return
        assert options is not None
        pending = _Pending(self._new_id(), addr, request, options, key_material, now, timestamp)
        self._pending[pending.handle] = pending
        self._by_caller[(addr, request.socket_id)] = pending
        stream = parse_stream_id(stream_id)
        self._events.append(
            ConnectionRequested(
                pending.handle, addr, stream_id, stream.key, stream.mode, key_material is not None
            )
        )

    def _check_conclusion(
        self, request: hs.Handshake
    ) -> tuple[int, hs.SrtOptions | None, KeyMaterial | None, str]:
        """Everything that can be judged without the stream: a rejection code or 0."""
        if request.version != 5:
            return REJ_VERSION, None, None, ""
        block = request.extension_block(hs.EXT_HSREQ)
        if block is None or not request.extension & hs.EXT_FLAG_HSREQ:
            return REJ_ROGUE, None, None, ""
        options = hs.parse_srt_options(block)
        if options.version < 0x010300:
            return REJ_VERSION, None, None, ""
        if options.flags & hs.FLAG_STREAM or not options.flags & hs.FLAG_TSBPDSND:
            return REJ_MESSAGEAPI, None, None, ""
        congestion = request.extension_block(hs.EXT_CONGESTION)
        if congestion is not None and hs.decode_string_block(congestion) != "live":
            return REJ_CONGESTION, None, None, ""
        if request.extension_block(hs.EXT_FILTER) is not None:
            return REJ_FILTER, None, None, ""
        if request.extension_block(hs.EXT_GROUP) is not None:
            return REJ_GROUP, None, None, ""
        key_material = None
        km_block = request.extension_block(hs.EXT_KMREQ)
        if km_block is not None:
            key_material = parse_key_material(km_block)
        sid = request.extension_block(hs.EXT_SID)
        stream_id = hs.decode_stream_id(sid) if sid is not None else ""
        return 0, options, key_material, stream_id

    # -- the adapter's decisions ---------------------------------------------------------

    def verify_passphrase(self, handle: int, passphrase: str | None) -> int:
        """0 if the caller's encryption matches the stream's passphrase, else the
        rejection code: 1010 (wrong or missing passphrase), 1011 (the caller encrypts,
        the stream has no passphrase). On success the stream keys are kept."""
        pending = self._pending.get(handle)
        if pending is None:
            return REJ_ROGUE
        km = pending.key_material
        if not passphrase:
            return REJ_UNSECURE if km is not None else 0
        if km is None:
            return REJ_BADSECRET
        try:
            keys = unwrap_keys(km, passphrase)
        except BadSecret:
            return REJ_BADSECRET
        pending.crypto = Crypto(passphrase, km.salt, keys)
        return 0

    def accept(self, handle: int, now: float) -> bool:
        """Open the connection and answer the caller; False if it is gone already."""
        pending = self._pending.get(handle)
        if pending is None or pending.response is not None:
            return False
        if pending.key_material is not None and pending.crypto is None:
            self.reject(handle, REJ_BADSECRET, now)  # verify_passphrase was skipped
            return False
        request, options = pending.handshake, pending.options
        own_latency_ms = int(self.config.latency * 1000)
        receive_latency_ms = max(own_latency_ms, options.send_latency_ms)
        send_latency_ms = max(own_latency_ms, options.recv_latency_ms)
        hsrsp = hs.SrtOptions(SRT_VERSION, HSRSP_FLAGS, receive_latency_ms, send_latency_ms)
        extensions = [(hs.EXT_HSRSP, hsrsp.encode())]
        flags = hs.EXT_FLAG_HSREQ
        if pending.key_material is not None:
            extensions.append((hs.EXT_KMRSP, pending.key_material.raw))
            flags |= hs.EXT_FLAG_KMREQ
        response = hs.Handshake(
            version=5,
            encryption=0,
            extension=flags,
            isn=request.isn,
            mss=min(request.mss, MAX_MSS) or MAX_MSS,
            flow_window=FLOW_WINDOW,
            hs_type=hs.CONCLUSION,
            socket_id=handle,
            cookie=request.cookie,
            peer_ip=hs.ip_field(pending.peer[0]),
            extensions=extensions,
        )
        connection = SrtConnection(
            socket_id=handle,
            peer=pending.peer,
            peer_socket_id=request.socket_id,
            isn=request.isn,
            latency=receive_latency_ms / 1000,
            time_base=pending.received_at - pending.timestamp / 1e6,
            first_timestamp=pending.timestamp,
            now=now,
            crypto=pending.crypto,
            capacity=self.config.receive_window,
            idle_timeout=self.config.idle_timeout,
        )
        self.connections[handle] = connection
        pending.response = self._send_handshake(response, request.socket_id, pending.peer)
        pending.decided_at = now
        self.stats.accepted += 1
        return True

    def reject(self, handle: int, code: int, now: float) -> None:
        pending = self._pending.get(handle)
        if pending is None or pending.response is not None:
            return
        self.stats.rejected += 1
        rejection = self._rejection(pending.handshake, code, pending.peer)
        pending.response = self._send_handshake(
            rejection, pending.handshake.socket_id, pending.peer
        )
        pending.decided_at = now

    def close(self, handle: int, now: float) -> None:
        """Close a connection from our side (SHUTDOWN to the caller)."""
        connection = self.connections.get(handle)
        if connection is not None:
            connection.shutdown(now)
            self._collect(connection, now)

    # -- time ----------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        for connection in list(self.connections.values()):
            connection.handle_timer(now)
            self._collect(connection, now)
        for pending in list(self._pending.values()):
            if pending.handle in self.connections:
                continue
            limit = REJECTED_MEMORY if pending.response is not None else PENDING_TIMEOUT
            start = pending.decided_at if pending.response is not None else pending.received_at
            if now - start >= limit:
                self._forget(pending)

    def get_timer(self) -> float | None:
        times = [t for c in self.connections.values() if (t := c.get_timer()) is not None]
        for pending in self._pending.values():
            if pending.handle not in self.connections:
                if pending.response is not None:
                    times.append(pending.decided_at + REJECTED_MEMORY)
                else:
                    times.append(pending.received_at + PENDING_TIMEOUT)
        return min(times) if times else None

    # -- output --------------------------------------------------------------------------

    def events(self) -> list[SrtEvent]:
        out, self._events = self._events, []
        return out

    def datagrams_to_send(self) -> list[tuple[bytes, tuple[str, int]]]:
        out, self._outbox = self._outbox, []
        return out

    # -- helpers -------------------------------------------------------------------------

    def _collect(self, connection: SrtConnection, now: float) -> None:
        for datagram in connection.take_datagrams():
            self._outbox.append((datagram, connection.peer))
        delivered = connection.take_delivered()
        if delivered:
            self._events.append(DataReceived(connection.socket_id, b"".join(delivered)))
        if connection.closed:
            self._events.append(ConnectionClosed(connection.socket_id, connection.closed))
            del self.connections[connection.socket_id]
            counters = self.stats.counters
            for name, value in connection.counts().items():
                counters[name] = counters.get(name, 0) + value
            pending = self._pending.get(connection.socket_id)
            if pending is not None:
                self._forget(pending)

    def _forget(self, pending: _Pending) -> None:
        self._pending.pop(pending.handle, None)
        key = (pending.peer, pending.handshake.socket_id)
        if self._by_caller.get(key) is pending:
            del self._by_caller[key]

    def _rejection(self, request: hs.Handshake, code: int, addr: tuple[str, int]) -> hs.Handshake:
        return hs.Handshake(
            version=5,
            encryption=0,
            extension=0,
            isn=request.isn,
            mss=min(request.mss, MAX_MSS) or MAX_MSS,
            flow_window=FLOW_WINDOW,
            hs_type=code,
            socket_id=self.listener_id,
            cookie=request.cookie,
            peer_ip=hs.ip_field(addr[0]),
        )

    def _send_handshake(
        self, handshake: hs.Handshake, destination: int, addr: tuple[str, int]
    ) -> bytes:
        datagram = pk.control_packet(pk.HANDSHAKE, 0, 0, 0, destination, handshake.encode())
        self._outbox.append((datagram, addr))
        return datagram

    def _cookie(self, addr: tuple[str, int], minute: int) -> int:
        text = f"{addr[0]}|{addr[1]}|{minute}".encode()
        digest = hmac.new(self._secret, text, hashlib.sha256).digest()
        return struct.unpack(">I", digest[:4])[0]

    def _new_id(self) -> int:
        while True:
            candidate = self._rng.getrandbits(31)
            if candidate and candidate not in self.connections and candidate not in self._pending:
                return candidate
