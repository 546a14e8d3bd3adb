"""31-bit SRT sequence numbers and the arithmetic that survives their wrap.

Sequence numbers count packets modulo 2^31 (SRT §3.1). Two numbers are compared
by their signed distance, which is right as long as they are less than 2^30
apart: far more than any receive window.
"""

from __future__ import annotations

from typing import Final

SEQ_MODULUS: Final = 1 << 31
SEQ_MASK: Final = SEQ_MODULUS - 1
_HALF: Final = 1 << 30


def seq_add(seq: int, count: int) -> int:
    """`seq + count`, wrapped into 31 bits (count may be negative)."""
    return (seq + count) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """The signed distance from `a` to `b` (`b - a`), across the wrap."""
    d = (b - a) & SEQ_MASK
    return d - SEQ_MODULUS if d >= _HALF else d
