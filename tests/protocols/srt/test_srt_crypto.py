"""HaiCrypt: key material, PBKDF2 + AES key unwrap, AES-CTR payloads."""

from __future__ import annotations

import hashlib
import random
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from srt_testing import ISN, Caller, of_type

from live.protocols.srt import DataReceived
from live.protocols.srt import packets as pk
from live.protocols.srt.crypto import (
    BadSecret,
    build_key_material,
    counter_block,
    derive_kek,
    parse_key_material,
    unwrap_keys,
)
from live.protocols.srt.listener import SrtListener

SALT = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
PASSPHRASE = "0123456789abcdef"


def test_counter_block_layout():
    # salt bytes 0..13, packet index XORed in at 10..13, block counter 00 00
    iv = counter_block(SALT, 0x01020304)
    assert iv == bytes.fromhex("000102030405060708090b090f090000")


def test_kek_is_pbkdf2_sha1_over_the_last_8_salt_bytes():
    expected = hashlib.pbkdf2_hmac("sha1", PASSPHRASE.encode(), SALT[8:], 2048, 16)
    assert derive_kek(PASSPHRASE, SALT, 16) == expected


def test_key_material_layout_and_unwrap():
    key = bytes(range(32, 48))
    km = build_key_material(PASSPHRASE, SALT, {1: key})
    assert km[:4] == bytes.fromhex("12202901")  # V=1 PT=2, sign 0x2029, KK=1 (even)
    assert km[8:12] == bytes.fromhex("02000200")  # AES-CTR, no auth, SE=2
    assert km[14:16] == bytes([4, 4])  # 16-byte salt, 16-byte key
    assert km[16:32] == SALT and len(km) == 32 + 16 + 8
    parsed = parse_key_material(km)
    assert unwrap_keys(parsed, PASSPHRASE) == {1: key}
    with pytest.raises(BadSecret):
        unwrap_keys(parsed, "not the passphrase")
    both = parse_key_material(build_key_material(PASSPHRASE, SALT, {1: key, 2: key[::-1]}))
    assert unwrap_keys(both, PASSPHRASE) == {1: key, 2: key[::-1]}


@pytest.mark.parametrize("key_length", [16, 24, 32])
def test_encrypted_payloads_are_decrypted_with_the_known_key(key_length):
    key = bytes(random.Random(key_length).getrandbits(8) for _ in range(key_length))
    listener = SrtListener(rng=random.Random(2))
    caller = Caller(listener, passphrase=PASSPHRASE, key=key, salt=SALT)
    handle = caller.connect(0.0)
    plain = b"\x47" + bytes(range(187)) * 7
    seq = ISN
    # encrypt independently of the code under test: AES-CTR by the HaiCrypt layout
    iv = bytearray(SALT[:14] + b"\0\0")
    for i, b in enumerate(struct.pack(">I", seq)):
        iv[10 + i] ^= b
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(iv))).encryptor()
    cipher_text = encryptor.update(plain) + encryptor.finalize()
    assert cipher_text != plain
    caller.send(pk.data_packet(seq, 0, caller.peer_id, cipher_text, key=1), 0.0)
    listener.handle_timer(1.0)
    data = b"".join(e.data for e in listener.events() if isinstance(e, DataReceived))
    assert data == plain
    assert listener.connections[handle].undecryptable == 0


def test_packets_for_an_unknown_key_are_dropped_and_counted():
    listener = SrtListener(rng=random.Random(2))
    caller = Caller(listener, passphrase=PASSPHRASE, salt=SALT)
    handle = caller.connect(0.0)
    caller.send(pk.data_packet(ISN, 0, caller.peer_id, b"x" * 16, key=2), 0.0)  # odd: none
    assert listener.connections[handle].undecryptable == 1


def test_key_refresh_installs_the_odd_key_and_answers_kmrsp():
    listener = SrtListener(rng=random.Random(2))
    caller = Caller(listener, passphrase=PASSPHRASE, salt=SALT)
    handle = caller.connect(0.0)
    caller.collect()
    odd = bytes(range(200, 216))
    km = build_key_material(PASSPHRASE, SALT, {1: caller.key, 2: odd})
    caller.send(pk.control_packet(pk.USER_DEFINED, pk.EXT_KMREQ, 0, 0, caller.peer_id, km), 0.1)
    (reply,) = of_type(caller.collect(), pk.USER_DEFINED)
    assert reply[1] == pk.EXT_KMRSP and reply[4] == km
    assert listener.connections[handle].crypto.keys[2] == odd
