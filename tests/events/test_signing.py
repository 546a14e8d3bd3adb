"""The Live-Signature header, byte for byte."""

from __future__ import annotations

import hashlib
import hmac

from live.events.signing import new_secret, sign, verify

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","event":"livestream.live"}'


def test_header_is_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"whsec_test", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, BODY) == f"t=1700000000,v1={expected}"


def test_verify_accepts_our_header_and_rejects_changes() -> None:
    header = sign(SECRET, 1700000000, BODY)
    assert verify(SECRET, header, BODY)
    assert not verify("whsec_other", header, BODY)
    assert not verify(SECRET, header, BODY + b" ")
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000001"), BODY)
    assert not verify(SECRET, "garbage", BODY)
    assert not verify(SECRET, "t=x,v1=00", BODY)


def test_verify_checks_the_age_when_asked() -> None:
    header = sign(SECRET, 1700000000, BODY)
    assert verify(SECRET, header, BODY, now=1700000100)
    assert not verify(SECRET, header, BODY, now=1700001000)


def test_secrets_are_fresh() -> None:
    assert len({new_secret() for _ in range(50)}) == 50
    assert new_secret().startswith("whsec_")
