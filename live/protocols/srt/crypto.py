"""SRT payload encryption (HaiCrypt, SRT §6): key material, key unwrap, AES-CTR.

A caller with a passphrase sends a Key Material message (KMREQ) holding a random
salt and the stream encrypting key(s), wrapped (RFC 3394) with a key derived from
the passphrase: PBKDF2-HMAC-SHA1 over the last 8 bytes of the salt, 2048 rounds,
as long as the key. Each data packet is then AES-CTR encrypted with a counter
block made of the salt (first 112 bits) XOR the packet's sequence number at bytes
10..13, the last 16 bits counting blocks.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from .packets import PacketError

KM_HEADER: Final = struct.Struct(">BHBIBBBBHBB")  # 16 bytes
KM_VERSION_TYPE: Final = 0x12  # version 1, packet type 2 (KM)
KM_SIGN: Final = 0x2029  # "HAI" PnP vendor id
CIPHER_AES_CTR: Final = 2
KEY_EVEN: Final = 1
KEY_ODD: Final = 2
PBKDF2_ROUNDS: Final = 2048
PBKDF2_SALT_BYTES: Final = 8
WRAP_OVERHEAD: Final = 8
KEY_LENGTHS: Final = (16, 24, 32)


class BadSecret(Exception):
    """The key material cannot be unwrapped with this passphrase."""


@dataclass(slots=True)
class Crypto:
    """A connection's decryption state: the passphrase (for key refreshes), salt, keys."""

    passphrase: str
    salt: bytes
    keys: dict[int, bytes]


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """A parsed KM message; `keys` bit 1 = even key present, bit 2 = odd key."""

    keys: int
    cipher: int
    salt: bytes
    key_length: int
    wrapped: bytes
    raw: bytes


def parse_key_material(data: bytes) -> KeyMaterial:
    if len(data) < KM_HEADER.size:
        raise PacketError("key material shorter than its header")
    (vt, sign, kk, _keki, cipher, _auth, _se, _r1, _r2, slen4, klen4) = KM_HEADER.unpack_from(data)
    if vt != KM_VERSION_TYPE or sign != KM_SIGN:
        raise PacketError("not an SRT key material message")
    keys = kk & 0x3
    salt_length, key_length = slen4 * 4, klen4 * 4
    if keys == 0 or key_length not in KEY_LENGTHS or salt_length != 16:
        raise PacketError("key material with an unsupported key or salt length")
    count = 2 if keys == 3 else 1
    wrapped_length = count * key_length + WRAP_OVERHEAD
    start = KM_HEADER.size + salt_length
    if len(data) < start + wrapped_length:
        raise PacketError("key material shorter than its wrapped keys")
    return KeyMaterial(
        keys,
        cipher,
        data[KM_HEADER.size : start],
        key_length,
        data[start : start + wrapped_length],
        data[: start + wrapped_length],
    )


def derive_kek(passphrase: str, salt: bytes, key_length: int) -> bytes:
    return hashlib.pbkdf2_hmac(
        "sha1", passphrase.encode("utf-8"), salt[-PBKDF2_SALT_BYTES:], PBKDF2_ROUNDS, key_length
    )


def unwrap_keys(km: KeyMaterial, passphrase: str) -> dict[int, bytes]:
    """The stream keys by KK value (1 even, 2 odd); BadSecret if the passphrase is wrong."""
    if km.cipher != CIPHER_AES_CTR:
        raise BadSecret(f"unsupported cipher {km.cipher}")
    kek = derive_kek(passphrase, km.salt, km.key_length)
    try:
        plain = aes_key_unwrap(kek, km.wrapped)
    except (InvalidUnwrap, ValueError) as error:
        raise BadSecret("wrong passphrase") from error
    if km.keys == 3:
        return {KEY_EVEN: plain[: km.key_length], KEY_ODD: plain[km.key_length :]}
    return {km.keys: plain}


def build_key_material(passphrase: str, salt: bytes, keys: dict[int, bytes]) -> bytes:
    """A KM message as a caller sends it (used by tests and benchmarks)."""
    kk = sum(keys)
    ordered = [keys[k] for k in (KEY_EVEN, KEY_ODD) if k in keys]
    key_length = len(ordered[0])
    kek = derive_kek(passphrase, salt, key_length)
    wrapped = aes_key_wrap(kek, b"".join(ordered))
    header = KM_HEADER.pack(
        KM_VERSION_TYPE, KM_SIGN, kk, 0, CIPHER_AES_CTR, 0, 2, 0, 0, len(salt) // 4, key_length // 4
    )
    return header + salt + wrapped


def counter_block(salt: bytes, seq: int) -> bytes:
    iv = bytearray(salt[:14]) + b"\x00\x00"
    for i, byte in enumerate(struct.pack(">I", seq)):
        iv[10 + i] ^= byte
    return bytes(iv)


def aes_ctr(key: bytes, salt: bytes, seq: int, payload: bytes) -> bytes:
    """Encrypt or decrypt (the same operation in CTR mode) one packet's payload."""
    cipher = Cipher(algorithms.AES(key), modes.CTR(counter_block(salt, seq)))
    context = cipher.encryptor()
    return context.update(payload) + context.finalize()
