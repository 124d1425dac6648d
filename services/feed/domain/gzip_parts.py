"""One gzip member made of pieces compressed apart: shared pieces once, the small per-feed part per feed.

A feed's body is `header + zones + events + tail`. The events (100 kB and up) are shared by every
subscription with the same filter; the header carries the subscription's own links. Compressing
each body whole would cost a compression per subscription and a copy of the gzip per subscription.
Instead each shared piece is compressed once, by a fresh raw-deflate compressor ended with a sync
flush (so it ends on a byte boundary, is not the final block, and refers to nothing before it:
RFC 1951 lets deflate blocks from different compressors follow one another). The header goes in
as a stored (uncompressed) block, which costs no compression at all, and the tail ends the stream.

The gzip trailer needs the CRC-32 of the whole body. CRC-32 is affine, so
`crc(A + B) = shift_len(B)(crc(A)) ^ crc(B)`, where `shift_n` is a linear map of 32 bits that
depends only on `n`: what zlib's `crc32_combine` computes (Python does not expose it). A
`CrcShift` holds that map as four byte tables, so combining a header's CRC with a shared part's
costs four lookups instead of a pass over 100 kB. Written by hand for that reason.

One member, not several concatenated: RFC 1952 allows members back to back, but not every HTTP
client decodes past the first one, and this way no client has to.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

# ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown): the same bytes for every body.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
LEVEL = 6
_STORED_MAX = 0xFFFF


def deflate_piece(data: bytes, *, final: bool) -> bytes:
    """Raw deflate of `data` by a fresh compressor: byte-aligned and not final, or the final blocks."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def stored_blocks(data: bytes) -> bytes:
    """`data` as non-final stored deflate blocks (RFC 1951 3.2.4); starts on a byte boundary."""
    out = bytearray()
    for start in range(0, len(data), _STORED_MAX):
        piece = data[start : start + _STORED_MAX]
        out += struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF)
        out += piece
    return bytes(out)


def trailer(crc: int, size: int) -> bytes:
    return struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


class CrcShift:
    """The linear map `crc -> crc32_combine(crc, 0, n)` for one length `n`, as four byte tables."""

    __slots__ = ("_tables",)

    def __init__(self, images: list[int]) -> None:
        """`images[bit]` is the map applied to `1 << bit`."""
        self._tables = tuple(_byte_table(images[8 * k : 8 * k + 8]) for k in range(4))

    @classmethod
    def over(cls, length: int) -> CrcShift:
        """The shift over `length` bytes: zlib's own CRC over zero bytes for up to 64 kB, composed by
        squaring beyond (a 6 MB section then costs milliseconds, not a pass per bit)."""
        whole, part = divmod(length, _BLOCK)
        result = _zero_shift(part)
        power = _zero_shift(_BLOCK) if whole else result
        while whole:
            if whole & 1:
                result = result.then(power)
            whole >>= 1
            if whole:
                power = power.then(power)
        return result

    def then(self, other: CrcShift) -> CrcShift:
        """This shift followed by `other` (both are linear, so the order does not matter)."""
        return CrcShift([other(self(1 << bit)) for bit in range(32)])

    def __call__(self, crc: int) -> int:
        t0, t1, t2, t3 = self._tables
        return t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24]


_BLOCK = 64 * 1024


def _zero_shift(length: int) -> CrcShift:
    # crc32(zeros, c) ^ crc32(zeros, 0) is the register c carried over `length` zero bytes.
    zeros = bytes(length)
    base = zlib.crc32(zeros, 0)
    return CrcShift([zlib.crc32(zeros, 1 << bit) ^ base for bit in range(32)])


def _byte_table(images: list[int]) -> tuple[int, ...]:
    table = [0] * 256
    for value in range(1, 256):
        low = value & -value
        table[value] = table[value ^ low] ^ images[low.bit_length() - 1]
    return tuple(table)


class CompressedRun:
    """Pieces that always follow each other at the end of a body, compressed once: the deflate bytes
    to send, the CRC-32 and length of what they decompress to, and (made on first use) the shift
    that puts another CRC before theirs. The last piece ends the deflate stream."""

    __slots__ = ("_shift", "crc", "deflate", "length")

    def __init__(self, deflate: tuple[bytes, ...], crc: int, length: int) -> None:
        self.deflate = deflate
        self.crc = crc
        self.length = length
        self._shift: CrcShift | None = None

    @classmethod
    def of(cls, pieces: Iterable[bytes], deflated: Iterable[bytes | None] = ()) -> CompressedRun:
        """`pieces` in order; `deflated` may give a piece's non-final deflate already made (shared)."""
        parts = list(pieces)
        given = list(deflated)
        ready = given + [None] * (len(parts) - len(given))
        crc = 0
        out: list[bytes] = []
        for index, (part, done) in enumerate(zip(parts, ready, strict=True)):
            crc = zlib.crc32(part, crc)
            last = index == len(parts) - 1
            out.append(done if done is not None and not last else deflate_piece(part, final=last))
        return cls(tuple(out), crc, sum(map(len, parts)))

    @property
    def shift(self) -> CrcShift:
        if self._shift is None:
            self._shift = CrcShift.over(self.length)
        return self._shift

    @property
    def shift_ready(self) -> bool:
        return self._shift is not None

    def crc_after(self, head: bytes) -> int:
        """The CRC-32 of `head` followed by these pieces."""
        return self.shift(zlib.crc32(head)) ^ self.crc

    @property
    def size(self) -> int:
        return sum(map(len, self.deflate)) + (4 * 256 * 8 if self._shift is not None else 0)


def gzip_member(head: bytes, deflate: tuple[bytes, ...], crc: int, size: int) -> list[bytes]:
    """`head` (as a stored block), then `deflate` (ending with the final block), as one gzip member:
    `crc` and `size` are those of the whole decompressed body."""
    return [*gzip_head(head), *deflate, trailer(crc, size)]


def gzip_head(head: bytes) -> tuple[bytes, ...]:
    """The gzip header and `head` as stored blocks, in pieces (nothing copied for a head under 64 kB)."""
    if len(head) <= _STORED_MAX:
        return GZIP_HEADER + struct.pack("<BHH", 0, len(head), len(head) ^ 0xFFFF), head
    return GZIP_HEADER, stored_blocks(head)
