"""Which pages of a fixed VHD a page-blob upload must send, and a digest of its content that skips holes.

Plain functions on a local file: no Airflow, no SDK.

A page blob starts as all zeros, so only pages holding non-zero bytes need sending (Add-AzVhd and
azcopy skip empty ranges the same way). Data comes from ``SEEK_DATA``/``SEEK_HOLE``, so holes are
never read; allocated stretches that are all zeros are cut out too. Ranges are 512-aligned, never
longer than Put Page's 4 MiB and never cross a 4 MiB boundary; the footer is always sent.

The same pass takes the file's content digest: what names the source in the blob's metadata, and
what the blob read back must match. Both sides compute it without reading or hashing gigabytes of
zeros: it is SHA-256 over the size and, for every 4 MiB chunk that is not all zeros, the chunk's
index and SHA-256, so it depends only on the logical content, not on how it is stored. The plain
SHA-256 (``file_sha256``, for people and image tags) hashes every zero, so it costs time in
proportion to the apparent size.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image_factory.disks.vhd import FOOTER_SIZE, check_fixed

KIB = 1024
MIB = 1024 * KIB
PAGE = 512  # page blobs are written in 512-byte pages
MAX_PUT_PAGE = 4 * MIB  # Put Page's largest body
CHUNK = MAX_PUT_PAGE  # unit of planning and of the digest
ZERO_BLOCK = 64 * KIB  # an aligned all-zero stretch this long is cut out of a range
DIGEST_ALGORITHM = "sha256-4mib-chunks-v1"
_DIGEST_PREFIX = DIGEST_ALGORITHM.encode() + b"\0"
_ZERO_CHUNK = bytes(CHUNK)

Span = tuple[int, int]  # [start, end) in bytes


class VhdFileError(ValueError):
    """The file changed while it was read."""


@dataclass(frozen=True)
class UploadPlan:
    """What to send for one file, and what planning saw."""

    path: str
    size: int  # the file's (and the blob's) size in bytes
    allocated: int  # bytes in the file's data extents (the whole file when holes are not reported)
    ranges: tuple[Span, ...]  # to send, in order
    zero_spans: int  # all-zero stretches of allocated data left out
    zero_bytes: int  # their bytes
    holes_reported: bool  # the filesystem told data from holes
    digest: str  # the file's content digest (DIGEST_ALGORITHM): names the source, and the blob read back must match

    @property
    def bytes_to_send(self) -> int:
        return sum(end - start for start, end in self.ranges)


def data_extents(fd: int, size: int) -> tuple[list[Span], bool]:
    """The file's data ranges from SEEK_DATA/SEEK_HOLE, and whether the filesystem reported holes at all.

    Without hole reporting the whole file counts as data (its zeros are then found by reading).
    """
    out: list[Span] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                raise
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            out.append((start, end))
            pos = end
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
        return ([(0, size)] if size else []), False
    return out, True


def nonzero_spans(chunk: bytes | bytearray, base: int, zero_block: int = ZERO_BLOCK) -> list[Span]:
    """Page-aligned spans of ``chunk`` (which starts at offset ``base``) that hold non-zero bytes.

    Aligned all-zero blocks of ``zero_block`` bytes split spans; shorter zero stretches inside a
    span are sent with it (one request costs more than a few zero pages).
    """
    if base % PAGE or zero_block % PAGE or zero_block <= 0:
        raise ValueError(f"base ({base}) and zero_block ({zero_block}) must be positive multiples of {PAGE}")
    n = len(chunk)
    zeros = bytes(zero_block)
    runs: list[list[int]] = []
    for i in range(0, n, zero_block):
        j = min(i + zero_block, n)
        if chunk[i:j] == zeros[: j - i]:
            continue
        if runs and runs[-1][1] == i:
            runs[-1][1] = j
        else:
            runs.append([i, j])
    spans: list[Span] = []
    for i, j in runs:
        first = chunk[i : min(i + zero_block, j)]
        start = i + (len(first) - len(first.lstrip(b"\0"))) // PAGE * PAGE
        last_from = max(i, j - zero_block)
        last = chunk[last_from:j]
        end = last_from + len(last.rstrip(b"\0"))
        end = min(n, -(-end // PAGE) * PAGE)
        spans.append((base + start, base + end))
    return spans


def subtract(spans: Iterable[Span], minus: Sequence[Span]) -> list[Span]:
    """The parts of ``spans`` not covered by ``minus`` (both sorted, each without overlaps)."""
    out: list[Span] = []
    k = 0
    for start, end in spans:
        pos = start
        while k < len(minus) and minus[k][1] <= pos:
            k += 1
        m = k
        while pos < end and m < len(minus) and minus[m][0] < end:
            if minus[m][0] > pos:
                out.append((pos, minus[m][0]))
            pos = max(pos, minus[m][1])
            m += 1
        if pos < end:
            out.append((pos, end))
    return out


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, overlapping or touching spans joined (page ranges a service lists may come in pieces)."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def missing(planned: Sequence[Span], present: Iterable[Span]) -> list[Span]:
    """Planned ranges not wholly inside the present ones (a partly present range is sent again whole)."""
    have = merge(present)
    return [r for r in planned if subtract([r], have)]


class ContentDigest:
    """DIGEST_ALGORITHM, fed chunk by chunk in order; chunks never fed count as zeros."""

    def __init__(self, size: int) -> None:
        self._last = -1
        self._hash = hashlib.sha256(_DIGEST_PREFIX + size.to_bytes(8, "big"))

    @staticmethod
    def chunk_hash(chunk: bytes | bytearray) -> bytes | None:
        """What one chunk (its holes as zeros) contributes: its SHA-256, or None when it is all zeros."""
        if chunk == (_ZERO_CHUNK if len(chunk) == CHUNK else bytes(len(chunk))):
            return None
        return hashlib.sha256(chunk).digest()

    def add_hash(self, index: int, chunk_hash: bytes | None) -> None:
        """Chunk ``index``'s ``chunk_hash`` (computed anywhere, e.g. on the thread that read it)."""
        if index <= self._last:
            raise ValueError(f"chunk {index} comes after chunk {self._last}: chunks go in increasing order")
        self._last = index
        if chunk_hash is not None:
            self._hash.update(index.to_bytes(8, "big") + chunk_hash)

    def add(self, index: int, chunk: bytes | bytearray) -> None:
        """Chunk ``index`` (CHUNK bytes, shorter at the end) with its holes as zeros."""
        self.add_hash(index, self.chunk_hash(chunk))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def chunks_of(spans: Sequence[Span], size: int) -> dict[int, list[Span]]:
    """For each CHUNK index that ``spans`` touch, the parts of the spans inside it (in order)."""
    out: dict[int, list[Span]] = {}
    for start, end in spans:
        pos = start
        while pos < end:
            index = pos // CHUNK
            stop = min(end, (index + 1) * CHUNK, size)
            out.setdefault(index, []).append((pos, stop))
            pos = stop
    return out


def chunk_bounds(index: int, size: int) -> Span:
    return index * CHUNK, min(size, (index + 1) * CHUNK)


def plan_upload(path: str | os.PathLike[str], *, zero_block: int = ZERO_BLOCK) -> UploadPlan:
    """Read the file's data once (never its holes): the ranges to send and the content digest.

    The file must be a fixed VHD that Azure takes (``vhd.check_fixed``: a DiskError lists every rule
    it breaks), so its size is whole pages and its last page is the footer.
    """
    check_fixed(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        extents, holes_reported = data_extents(fd, size)
        digest = ContentDigest(size)
        ranges: list[Span] = []
        left_out: list[Span] = []
        for index, parts in sorted(chunks_of(extents, size).items()):
            lo, hi = chunk_bounds(index, size)
            buf = _read_chunk(fd, path, lo, hi, parts)
            digest.add(index, buf)
            spans = nonzero_spans(buf, lo, zero_block)
            if index == (size - 1) // CHUNK:
                spans = _with_footer(spans, size)
            ranges += spans
            left_out += merge(subtract(parts, spans))
    finally:
        os.close(fd)
    return UploadPlan(
        path=os.fspath(Path(path)), size=size, allocated=sum(e - s for s, e in extents), ranges=tuple(ranges),
        zero_spans=len(left_out), zero_bytes=sum(e - s for s, e in left_out), holes_reported=holes_reported,
        digest=digest.hexdigest(),
    )


def file_sha256(path: str | os.PathLike[str], *, stop: threading.Event | None = None) -> str:
    """The file's SHA-256 as ``sha256sum`` prints it, its holes hashed as zeros without being read.

    Its cost grows with the file's apparent size (every zero is hashed), which is why the upload
    computes it on a thread of its own while pages are on their way; ``stop`` ends it early
    (InterruptedError).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        extents, _ = data_extents(fd, size)
        sha256 = hashlib.sha256()
        hashed = 0  # bytes [0, hashed) are in the hash
        for index, parts in sorted(chunks_of(extents, size).items()):
            lo, hi = chunk_bounds(index, size)
            _hash_zeros(sha256, hashed, lo, stop)
            sha256.update(_read_chunk(fd, path, lo, hi, parts))
            hashed = hi
        _hash_zeros(sha256, hashed, size, stop)
    finally:
        os.close(fd)
    return sha256.hexdigest()


def _read_chunk(fd: int, path: str | os.PathLike[str], lo: int, hi: int, parts: list[Span]) -> bytearray:
    """Bytes [lo, hi) of the file with only ``parts`` read: the rest are holes, zeros."""
    buf = bytearray(hi - lo)
    for start, end in parts:
        data = os.pread(fd, end - start, start)
        if len(data) != end - start:
            raise VhdFileError(f"{os.fspath(path)}: the file shrank while it was read (at byte {start})")
        buf[start - lo : end - lo] = data
    return buf


def _hash_zeros(sha256: Any, start: int, end: int, stop: threading.Event | None) -> None:
    """Feed the zeros of a hole [start, end) to a hash without reading them (``stop``: InterruptedError)."""
    while start < end:
        if stop is not None and stop.is_set():
            raise InterruptedError("SHA-256 stopped")
        n = min(CHUNK, end - start)
        sha256.update(_ZERO_CHUNK if n == CHUNK else bytes(n))
        start += n


def _with_footer(spans: list[Span], size: int) -> list[Span]:
    """The last chunk's spans, reaching the end of the file (the footer is always sent)."""
    foot = size - FOOTER_SIZE
    if spans and spans[-1][1] >= foot:
        return [*spans[:-1], (spans[-1][0], size)]
    return [*spans, (foot, size)]
