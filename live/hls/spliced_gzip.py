"""Gzip many copies of one text that differ only in a short insert, compressing once.

Every player's media playlist is the same rendering with that player's query spliced
into each URI. Gzipping each copy from scratch costs more than everything else a
playlist request does, so the shared text is deflated once per playlist version and
each player's copy is assembled from that output:

- The compressor sees the template with a placeholder where the insert goes. The
  placeholder is as long as the insert and made of distinct bytes (0x80 upwards)
  that an ASCII text never contains.
- The first placeholder is compressed on its own, between two sync flushes, and its
  output is dropped: each player's insert goes there as a stored (uncompressed)
  block, which the sync flush before it has already begun.
- Every later placeholder can only match an earlier placeholder, byte k against byte
  k, because its bytes occur nowhere else and never twice within it. A decoder that
  holds the player's insert at those places therefore copies the player's insert,
  so all but the first insert come out of compressed output shared by every player.
- The CRC-32 of the gzip trailer is a CRC of the copy's text at first. Once a
  template has served `CRC_TABLE_AFTER` copies it is computed without the text: CRC-32
  is affine in the insert's bytes (`SplicedCrc`), so a CRC of the short insert and four
  table look-ups give it. The table costs about a hundred direct CRCs to build, and a
  template lives only until the next part (200 ms), so it is built only for templates
  many players fetch.

Each template is checked once, by decompressing it with a test insert; one the
compressor did not encode as expected (a placeholder byte left as a literal) is
gzipped per copy instead, so the result is always a valid gzip (RFC 1952) of exactly
the spliced text.
"""

from __future__ import annotations

import struct
import zlib

# mtime 0 so that equal texts compress to equal bytes; OS 255 = unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_TRAILER = struct.Struct("<II")  # CRC-32 and length of the text
_SYNC_MARKER = b"\x00\x00\xff\xff"  # LEN/NLEN of the empty stored block a sync flush ends with
MAX_INSERT = 64
CRC_TABLE_AFTER = 128  # copies of one template served before its CRC table is built
_WINDOW_BITS = 13  # 8 KiB reaches back past the previous URI of any playlist


def gzip_bytes(data: bytes) -> bytes:
    """Gzip `data` on its own, without a timestamp."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + _WINDOW_BITS, 5)
    return comp.compress(data) + comp.flush()


class SplicedGzip:
    """The template `pieces` joined by an insert of `insert_len` bytes, gzipped cheaply.

    Build it once per template and insert length; `render(insert)` then costs a join
    and a CRC, not a compression.
    """

    __slots__ = ("_copies", "_crc", "_insert_len", "_length", "_pieces", "_prefix", "_tail")

    def __init__(self, pieces: list[bytes], insert_len: int) -> None:
        if not 0 < insert_len <= MAX_INSERT:
            raise ValueError(f"insert length must be 1..{MAX_INSERT}, not {insert_len}")
        self._pieces = pieces
        self._insert_len = insert_len
        self._prefix: bytes | None = None  # gzip header, head, stored block header
        self._tail = b""
        self._crc: SplicedCrc | None = None
        self._copies = 0
        self._length = (sum(map(len, pieces)) + insert_len * (len(pieces) - 1)) & 0xFFFFFFFF
        if len(pieces) > 1 and all(piece.isascii() for piece in pieces):
            self._encode()

    @property
    def insert_len(self) -> int:
        return self._insert_len

    @property
    def spliced(self) -> bool:
        """False when each copy is gzipped on its own (no insert, or a check failed)."""
        return self._prefix is not None

    @property
    def crc_table_built(self) -> bool:
        """True once copies take their CRC from the table (`CRC_TABLE_AFTER`)."""
        return self._crc is not None

    def _encode(self) -> None:
        placeholder = bytes(range(0x80, 0x80 + self._insert_len))
        deflate = zlib.compressobj(6, zlib.DEFLATED, -_WINDOW_BITS, 5)
        head = deflate.compress(self._pieces[0]) + deflate.flush(zlib.Z_SYNC_FLUSH)
        deflate.compress(placeholder)
        deflate.flush(zlib.Z_SYNC_FLUSH)
        rest = placeholder.join(self._pieces[1:])
        tail = deflate.compress(rest) + deflate.flush(zlib.Z_FINISH)
        if not head.endswith(_SYNC_MARKER):
            return
        # The sync flush's empty stored block keeps its header bits; its LEN/NLEN
        # become the insert's length, so that the block holds the insert.
        length = struct.pack("<HH", self._insert_len, self._insert_len ^ 0xFFFF)
        self._prefix = _GZIP_HEADER + head[: -len(_SYNC_MARKER)] + length
        self._tail = tail
        probe = bytes(range(0x30, 0x30 + self._insert_len))
        try:
            decoded = zlib.decompress(self._deflate(probe), -_WINDOW_BITS)
        except zlib.error:
            decoded = b""
        if decoded != probe.join(self._pieces):
            self._prefix = None

    def _deflate(self, insert: bytes) -> bytes:
        assert self._prefix is not None
        return self._prefix[len(_GZIP_HEADER) :] + insert + self._tail

    def _crc_of(self, insert: bytes) -> int:
        crc = self._crc
        if crc is not None:
            return crc.of(insert)
        self._copies += 1
        if self._copies == CRC_TABLE_AFTER and self._insert_len >= 4:
            table = SplicedCrc(self._pieces, self._insert_len)
            if table.of(insert) == zlib.crc32(insert.join(self._pieces)):  # self-check
                self._crc = table
        return zlib.crc32(insert.join(self._pieces))

    def text(self, insert: bytes) -> bytes:
        """The spliced text itself (for a client that does not take gzip)."""
        if len(insert) != self._insert_len:
            raise ValueError(f"insert is {len(insert)} bytes, expected {self._insert_len}")
        return insert.join(self._pieces)

    def gzip(self, insert: bytes) -> bytes:
        """The gzip of `text(insert)`; `insert` must be `insert_len` bytes long."""
        prefix = self._prefix
        if prefix is None:
            return gzip_bytes(self.text(insert))
        if len(insert) != self._insert_len:
            raise ValueError(f"insert is {len(insert)} bytes, expected {self._insert_len}")
        trailer = _TRAILER.pack(self._crc_of(insert), self._length)
        return b"".join((prefix, insert, self._tail, trailer))

    def render(self, insert: bytes) -> tuple[bytes, bytes]:
        """The spliced text and its gzip."""
        return self.text(insert), self.gzip(insert)


def _unit_register_words() -> list[bytes]:
    """For each bit i, the 4 bytes that leave the CRC-32 register at exactly 1 << i
    when processed from a zero register (solved once over GF(2))."""
    zero = zlib.crc32(bytes(4))
    # The register each single-bit word leads to; CRC-32 of 4 bytes is a bijection.
    rows = [(zlib.crc32((1 << j).to_bytes(4, "little")) ^ zero, 1 << j) for j in range(32)]
    solved: list[tuple[int, int]] = []
    for bit in range(32):
        pivot = next(k for k, (register, _) in enumerate(rows) if register >> bit & 1)
        register, word = rows.pop(pivot)
        rows = [(r ^ register, w ^ word) if r >> bit & 1 else (r, w) for r, w in rows]
        solved = [(r ^ register, w ^ word) if r >> bit & 1 else (r, w) for r, w in solved]
        solved.append((register, word))
    by_register = dict(solved)
    return [by_register[1 << i].to_bytes(4, "little") for i in range(32)]


_UNIT_WORDS = _unit_register_words()


class SplicedCrc:
    """CRC-32 of `insert.join(pieces)` for any insert of one length, without the text.

    CRC-32 is affine over GF(2): the text's CRC is the CRC of the text with a zero
    insert, XOR a linear function of the insert. That function only depends on the
    insert through the register its own bytes leave (a CRC of `insert_len` bytes),
    carried through the zeros that follow each occurrence; it is tabulated once per
    template, a byte of the register at a time.
    """

    __slots__ = ("_base", "_tables", "_zero_insert")

    def __init__(self, pieces: list[bytes], insert_len: int) -> None:
        if insert_len < 4:
            raise ValueError("an insert of at least 4 bytes is needed")
        zero_pieces = [bytes(len(piece)) for piece in pieces]
        zero_text_crc = zlib.crc32(bytes(insert_len).join(zero_pieces))
        self._base = zlib.crc32(bytes(insert_len).join(pieces))
        self._zero_insert = zlib.crc32(bytes(insert_len))
        padding = bytes(insert_len - 4)
        # What a register of 1 << i at the end of every occurrence adds to the CRC.
        basis = [
            zlib.crc32((padding + word).join(zero_pieces)) ^ zero_text_crc
            for word in _UNIT_WORDS
        ]
        self._tables = [_table(basis[8 * byte : 8 * byte + 8]) for byte in range(4)]

    def of(self, insert: bytes) -> int:
        register = zlib.crc32(insert) ^ self._zero_insert
        t0, t1, t2, t3 = self._tables
        return (
            self._base
            ^ t0[register & 0xFF]
            ^ t1[register >> 8 & 0xFF]
            ^ t2[register >> 16 & 0xFF]
            ^ t3[register >> 24]
        )


def _table(basis: list[int]) -> list[int]:
    """XOR of the basis values for every 8-bit pattern of bits."""
    table = [0]
    for value in basis:
        table += [entry ^ value for entry in table]
    return table
