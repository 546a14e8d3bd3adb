"""Identifiers and secrets.

Ids are public and only need to be unique; stream keys, playback ids and API keys
are drawn separately from `secrets` with at least 128 bits each, so that knowing a
playback id (which every viewer sees) tells nothing about the stream key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_id(prefix: str) -> str:
    """A unique, URL-safe id such as "ls_3kT9...": prefix + 96 random bits."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def new_stream_key() -> str:
    """The publish secret: "sk_" + 192 random bits."""
    return f"sk_{secrets.token_urlsafe(24)}"


def new_playback_id() -> str:
    """The public watch id: "pb_" + 144 random bits, independent of the stream key."""
    return f"pb_{secrets.token_urlsafe(18)}"


def new_api_key_secret() -> str:
    """An API key's plaintext, shown once: "lk_" + 256 random bits."""
    return f"lk_{secrets.token_urlsafe(32)}"


def secret_digest(plaintext: str) -> str:
    """The SHA-256 of a secret, in hex: what a secret is stored or looked up by.

    A fast hash is enough here: our secrets have 192 or 256 random bits, so there is
    nothing for a slow password hash to protect against. `surrogateescape` because a
    header with undecodable bytes arrives as such a string and must be a wrong key,
    not a crash.
    """
    return hashlib.sha256(_bytes(plaintext)).hexdigest()


def hash_api_key(plaintext: str) -> str:
    """The stored form of an API key (the plaintext is never stored)."""
    return secret_digest(plaintext)


def hash_stream_key(plaintext: str) -> str:
    """What a livestream is found by at publish time. The stream key itself is kept
    too (admins read it), but a lookup by its hash means no index compares what a
    stranger sent with a stored key byte by byte (a timing oracle)."""
    return secret_digest(plaintext)


def same_secret(stored: str, presented: str) -> bool:
    """Whether two secrets are equal, in time that does not depend on where they
    first differ."""
    return hmac.compare_digest(_bytes(stored), _bytes(presented))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")
