"""The server handshake: S0/S1/S2 bytes, waiting for C2, version checks."""

from __future__ import annotations

import pytest

from live.protocols.rtmp.errors import HandshakeError
from live.protocols.rtmp.handshake import HANDSHAKE_SIZE, ServerHandshake

C1 = bytes(range(256)) * 6
C2 = bytes([0x5A]) * HANDSHAKE_SIZE


def fixed_random(n: int) -> bytes:
    return bytes([0xA5]) * n


def test_c0c1_gives_s0_s1_s2() -> None:
    hs = ServerHandshake(fixed_random)
    consumed, out = hs.receive(b"\x03" + C1)
    assert consumed == 1 + HANDSHAKE_SIZE
    assert len(out) == 1 + 2 * HANDSHAKE_SIZE
    assert out[0] == 3
    s1, s2 = out[1 : 1 + HANDSHAKE_SIZE], out[1 + HANDSHAKE_SIZE :]
    assert s1[:4] == bytes(4)  # time: the core has no clock
    assert s1[4:8] == bytes(4)  # zero: makes librtmp/FFmpeg use the plain handshake
    assert s1[8:] == bytes([0xA5]) * 1528
    assert s2 == C1  # S2 echoes C1
    assert not hs.done


def test_nothing_more_until_c2_then_done() -> None:
    hs = ServerHandshake(fixed_random)
    hs.receive(b"\x03" + C1)
    assert hs.receive(C2[:1000]) == (0, b"")
    assert not hs.done
    consumed, out = hs.receive(C2 + b"chunk data")
    assert (consumed, out) == (HANDSHAKE_SIZE, b"")
    assert hs.done


def test_partial_c1_waits() -> None:
    hs = ServerHandshake(fixed_random)
    assert hs.receive(b"\x03") == (0, b"")
    assert hs.receive(b"\x03" + C1[:-1]) == (0, b"")
    assert hs.receive(b"\x03" + C1)[0] == 1 + HANDSHAKE_SIZE


@pytest.mark.parametrize("version", [0, 6, 8, 0x16])
def test_other_versions_are_refused_on_the_first_byte(version: int) -> None:
    hs = ServerHandshake(fixed_random)
    with pytest.raises(HandshakeError):
        hs.receive(bytes([version]))


def test_default_randomness_differs() -> None:
    a = ServerHandshake().receive(b"\x03" + C1)[1]
    b = ServerHandshake().receive(b"\x03" + C1)[1]
    assert a[9:1537] != b[9:1537]


def test_wrong_random_length_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        ServerHandshake(lambda n: b"short").receive(b"\x03" + C1)
