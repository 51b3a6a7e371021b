"""Copy a sparse disk file reading and writing only its allocated ranges, so holes stay holes.

A 30 GiB fixed VHD holding a 2 GiB Debian install is mostly holes: copying it byte by byte reads
and writes 30 GiB and leaves a fully allocated copy. Here the data ranges come from
``SEEK_DATA``/``SEEK_HOLE`` (or, when the filesystem does not report holes, from skipping
all-zero chunks), the copy is truncated to the source's size, and it appears under its final
name only once complete and fsynced (written to ``<dst>.tmp``, then renamed).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
CHUNK = 8 * MIB
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CopyStats:
    size: int  # apparent size of source and copy
    allocated: int  # bytes of data copied (what the progress total counted)
    extents: int  # data ranges copied
    seconds: float
    holes_reported: bool  # the filesystem reported holes (else zero chunks were detected)


def data_extents(fd: int, size: int) -> list[tuple[int, int]] | None:
    """[(start, end)] of the file's data ranges, or None when the filesystem does not report holes."""
    out: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            out.append((start, end))
            pos = end
    except OSError:
        return None
    if size and out == [(0, size)] and os.fstat(fd).st_blocks * 512 < size * 0.9:
        return None  # sparse on disk, yet reported as one data range: the filesystem hides its holes
    return out


def tmp_path(dst: Path) -> Path:
    return dst.with_name(dst.name + ".tmp")


def copy_sparse(src: Path, dst: Path, *, progress: Progress | None = None, chunk: int = CHUNK) -> CopyStats:
    """Copy ``src`` to ``dst`` keeping its holes; ``progress(done, total)`` after each chunk.

    ``total`` is the allocated bytes (the apparent size when holes must be found by reading). An
    exception raised by ``progress`` (a cancellation) aborts the copy; the partial file is removed.
    """
    began = time.monotonic()
    src, dst = Path(src), Path(dst)
    tmp = tmp_path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        extents = data_extents(fin.fileno(), size)
        holes = extents is not None
        ranges = extents if extents is not None else ([(0, size)] if size else [])
        total = sum(e - s for s, e in ranges)
        try:
            with open(tmp, "wb") as fout:
                os.ftruncate(fout.fileno(), size)
                done = _copy_ranges(fin.fileno(), fout.fileno(), ranges, total, chunk, progress, scan=not holes)
                os.fsync(fout.fileno())
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    _fsync_dir(dst.parent)
    return CopyStats(size=size, allocated=done if holes else _allocated(dst, size), extents=len(ranges),
                     seconds=time.monotonic() - began, holes_reported=holes)


def _copy_ranges(fin: int, fout: int, ranges: list[tuple[int, int]], total: int, chunk: int,
                 progress: Progress | None, *, scan: bool) -> int:
    """Copy each range chunk by chunk (in the kernel when it can; zero chunks skipped when scanning)."""
    zero = bytes(chunk) if scan else b""
    in_kernel = not scan
    done = 0
    if progress is not None:
        progress(0, total)
    for start, end in ranges:
        pos = start
        while pos < end:
            n = min(chunk, end - pos)
            if in_kernel:
                try:
                    n = _copy_range(fin, fout, pos, n)
                except OSError:  # e.g. across filesystems on old kernels: do it in user space
                    in_kernel = False
                    continue
            else:
                buf = os.pread(fin, n, pos)
                n = len(buf)
                if not n:
                    raise OSError(errno.EIO, f"source shrank while copying (at byte {pos})")
                if not (scan and buf == zero[:n]):
                    _pwrite_all(fout, buf, pos)
            pos += n
            done += n
            if progress is not None:
                progress(done, total)
    return done


def _copy_range(fin: int, fout: int, pos: int, n: int) -> int:
    copied = os.copy_file_range(fin, fout, n, pos, pos)
    if copied <= 0:
        raise OSError(errno.EIO, "copy_file_range copied nothing")
    return copied


def _pwrite_all(fd: int, buf: bytes, pos: int) -> None:
    view = memoryview(buf)
    while view:
        written = os.pwrite(fd, view, pos)
        view, pos = view[written:], pos + written


def _allocated(path: Path, size: int) -> int:
    return min(size, path.stat().st_blocks * 512)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
