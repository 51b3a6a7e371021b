"""copy_sparse: same bytes, same holes, honest progress, atomic, and VHD footers intact."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from emulator.storage import sparse, vhd

MIB = 1024 * 1024
SIZE = 256 * MIB
EXTENTS = [(0, 2 * MIB), (40 * MIB, 1 * MIB), (100 * MIB + 4096, 3 * MIB), (SIZE - MIB, MIB)]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def _sparse_vhd(path: Path) -> Path:
    """A 256 MiB fixed VHD with ~7 MiB of random data in scattered extents."""
    vhd.write_fixed(path, SIZE)
    fd = os.open(path, os.O_WRONLY)
    try:
        for start, length in EXTENTS:
            os.pwrite(fd, os.urandom(length), start)
    finally:
        os.close(fd)
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return _sparse_vhd(tmp_path / "src.vhd")


def test_the_copy_has_the_same_bytes_and_the_same_holes(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out" / "copy.vhd"
    stats = sparse.copy_sparse(src, dst)
    assert _sha(dst) == _sha(src)
    assert dst.stat().st_size == src.stat().st_size == SIZE + vhd.FOOTER_SIZE
    allocated = dst.stat().st_blocks * 512
    assert allocated < 16 * MIB  # far below the 256 MiB apparent size
    assert abs(allocated - src.stat().st_blocks * 512) <= 2 * MIB
    assert stats.holes_reported and stats.size == SIZE + vhd.FOOTER_SIZE
    assert stats.allocated < 16 * MIB
    assert not sparse.tmp_path(dst).exists()


def test_progress_is_monotonic_and_ends_at_the_allocated_total(src: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    stats = sparse.copy_sparse(src, tmp_path / "copy.vhd", progress=lambda d, t: seen.append((d, t)), chunk=MIB)
    dones = [d for d, _t in seen]
    assert dones == sorted(dones) and dones[0] == 0
    assert len({t for _d, t in seen}) == 1
    assert seen[-1] == (stats.allocated, stats.allocated)
    assert len(seen) > 5  # reported chunk by chunk, not only at the end


def test_the_vhd_footer_survives(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy.vhd"
    sparse.copy_sparse(src, dst)
    footer = vhd.check_fixed(dst)
    assert footer.current_size == SIZE
    assert footer.unique_id == vhd.check_fixed(src).unique_id


def test_without_reported_holes_zero_chunks_are_skipped(src: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparse, "data_extents", lambda fd, size: None)
    seen: list[tuple[int, int]] = []
    dst = tmp_path / "copy.vhd"
    stats = sparse.copy_sparse(src, dst, progress=lambda d, t: seen.append((d, t)), chunk=MIB)
    assert _sha(dst) == _sha(src)
    assert not stats.holes_reported
    assert dst.stat().st_blocks * 512 < 16 * MIB
    assert seen[-1][0] == seen[-1][1] == SIZE + vhd.FOOTER_SIZE


def test_an_aborted_copy_leaves_nothing_behind(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy.vhd"

    def cancel(done: int, total: int) -> None:
        if done > MIB:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        sparse.copy_sparse(src, dst, progress=cancel, chunk=MIB)
    assert not dst.exists() and not sparse.tmp_path(dst).exists()


def test_an_existing_copy_is_replaced_whole(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy.vhd"
    dst.write_bytes(b"x" * (300 * 1024))
    sparse.copy_sparse(src, dst)
    assert _sha(dst) == _sha(src)
