"""Identifiers and secrets.

Ids are public and only need to be unique; stream keys, playback ids and API keys
are drawn separately from `secrets` with at least 128 bits each, so that knowing a
playback id (which every viewer sees) tells nothing about the stream key.
"""

from __future__ import annotations

import hashlib
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


def hash_api_key(plaintext: str) -> str:
    """The stored form of an API key.

    A fast hash is enough here: the key has 256 random bits, so there is nothing
    for a slow password hash to protect against. `surrogateescape` because a header
    with undecodable bytes arrives as such a string and must be a wrong key, not a crash.
    """
    return hashlib.sha256(plaintext.encode("utf-8", "surrogateescape")).hexdigest()
