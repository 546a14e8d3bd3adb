"""A scripted SRT caller for the listener's tests: builds packets the way libsrt
1.5 does (HSv5 caller, live mode), so the tests speak to the core byte for byte."""

from __future__ import annotations

import struct

from live.protocols.srt import handshake as hs
from live.protocols.srt import packets as pk
from live.protocols.srt.crypto import aes_ctr, build_key_material
from live.protocols.srt.listener import SrtListener

CALLER = ("192.0.2.10", 40000)
CALLER_ID = 0x1234567
ISN = 1000


class Caller:
    def __init__(
        self,
        listener: SrtListener,
        *,
        addr: tuple[str, int] = CALLER,
        socket_id: int = CALLER_ID,
        isn: int = ISN,
        stream_id: str | None = "sk_test",
        latency_ms: int = 120,
        passphrase: str | None = None,
        key: bytes = bytes(range(16)),
        salt: bytes = bytes(range(100, 116)),
    ) -> None:
        self.listener = listener
        self.addr = addr
        self.socket_id = socket_id
        self.isn = isn
        self.stream_id = stream_id
        self.latency_ms = latency_ms
        self.passphrase = passphrase
        self.key = key
        self.salt = salt
        self.cookie = 0
        self.peer_id = 0  # the listener's socket ID once accepted
        self.seq = isn
        self.received: list[bytes] = []

    def send(self, datagram: bytes, now: float) -> None:
        self.listener.receive_datagram(datagram, self.addr, now)

    def collect(self) -> list[bytes]:
        """Datagrams the listener sent to this caller (others stay out)."""
        mine = [d for d, a in self.listener.datagrams_to_send() if a == self.addr]
        self.received += mine
        return mine

    def induction(self, now: float = 0.0) -> hs.Handshake:
        request = hs.Handshake(4, 0, hs.UDT_DGRAM, self.isn, 1500, 8192, hs.INDUCTION,
                               self.socket_id, 0, hs.ip_field("127.0.0.1"))  # fmt: skip
        self.send(pk.control_packet(pk.HANDSHAKE, 0, 0, 0, 0, request.encode()), now)
        (reply,) = self.collect()
        answer = hs.parse_handshake(reply[16:])
        self.cookie = answer.cookie
        return answer

    def conclusion_request(self, *, flags: int = 0xBF, extra=()) -> hs.Handshake:
        options = hs.SrtOptions(0x010503, flags, self.latency_ms, self.latency_ms)
        extensions = [(hs.EXT_HSREQ, options.encode())]
        ext_flags = hs.EXT_FLAG_HSREQ
        if self.passphrase:
            km = build_key_material(self.passphrase, self.salt, {1: self.key})
            extensions.append((hs.EXT_KMREQ, km))
            ext_flags |= hs.EXT_FLAG_KMREQ
        if self.stream_id is not None:
            extensions.append((hs.EXT_SID, hs.encode_stream_id(self.stream_id)))
            ext_flags |= hs.EXT_FLAG_CONFIG
        extensions += list(extra)
        encryption = len(self.key) // 8 if self.passphrase else 0
        return hs.Handshake(5, encryption, ext_flags, self.isn, 1500, 8192, hs.CONCLUSION,
                            self.socket_id, self.cookie, hs.ip_field("127.0.0.1"),
                            extensions)  # fmt: skip

    def conclusion(self, now: float, *, destination: int = 0, timestamp: int = 0, **kw) -> None:
        body = self.conclusion_request(**kw).encode()
        self.send(pk.control_packet(pk.HANDSHAKE, 0, 0, timestamp, destination, body), now)

    def connect(self, now: float = 0.0, **kw) -> int:
        """Induction + conclusion + accept; returns the handle."""
        self.induction(now)
        self.conclusion(now, **kw)
        (event,) = self.listener.events()
        assert self.listener.verify_passphrase(event.handle, self.passphrase) == 0
        assert self.listener.accept(event.handle, now)
        (reply,) = self.collect()
        self.peer_id = hs.parse_handshake(reply[16:]).socket_id
        return event.handle

    def data(self, seq: int, timestamp_us: int, payload: bytes, now: float, **kw) -> None:
        if self.passphrase:
            payload = aes_ctr(self.key, self.salt, seq, payload)
            kw.setdefault("key", 1)
        self.send(pk.data_packet(seq, timestamp_us, self.peer_id, payload, **kw), now)

    def control(self, control_type: int, now: float, info: int = 0, body: bytes = b"\0" * 4):
        self.send(pk.control_packet(control_type, 0, info, 0, self.peer_id, body), now)


def control_fields(datagram: bytes) -> tuple[int, int, int, int, bytes]:
    """(type, subtype, info, destination, body) of a control packet."""
    first, info, _ts, destination = struct.unpack_from(">IIII", datagram)
    assert first & 0x80000000
    return (first >> 16) & 0x7FFF, first & 0xFFFF, info, destination, datagram[16:]


def of_type(datagrams: list[bytes], control_type: int) -> list[tuple[int, int, int, int, bytes]]:
    return [f for d in datagrams if (f := control_fields(d))[0] == control_type]
