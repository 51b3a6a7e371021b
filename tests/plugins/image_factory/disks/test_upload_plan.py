"""Planning a page-blob upload on real sparse files: holes never read, zeros cut out, pages aligned, footer sent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from emulator.storage.vhd import make_footer, write_fixed
from image_factory.disks import DiskError, upload_plan
from image_factory.disks.upload_plan import (
    CHUNK,
    MAX_PUT_PAGE,
    MIB,
    PAGE,
    ContentDigest,
    file_sha256,
    merge,
    missing,
    nonzero_spans,
    plan_upload,
    subtract,
)


def vhd_with(path: Path, size: int, writes: dict[int, bytes]) -> Path:
    """A sparse fixed VHD of ``size`` data bytes with ``writes`` (offset: bytes) allocated in it.

    Its footer depends on the size only, so two such files differ only where their writes do.
    """
    write_fixed(path, size)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, make_footer(size, unique_id=bytes(range(16)), timestamp=946684800.0), size)
        for offset, data in writes.items():
            os.pwrite(fd, data, offset)
    finally:
        os.close(fd)
    return path


def check_shape(ranges: tuple[tuple[int, int], ...], size: int) -> None:
    """Every range: whole pages, at most Put Page's 4 MiB, inside one 4 MiB chunk, in order, no overlap."""
    previous_end = 0
    for start, end in ranges:
        assert start % PAGE == 0 and end % PAGE == 0, (start, end)
        assert 0 < end - start <= MAX_PUT_PAGE
        assert start // CHUNK == (end - 1) // CHUNK
        assert start >= previous_end
        previous_end = end
    assert previous_end == size  # the footer, always


def test_only_non_zero_data_is_planned_and_holes_are_never_read(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    size = 1024 * MIB
    data = os.urandom(3 * MIB)
    path = vhd_with(tmp_path / "d.vhd", size, {10 * MIB: data, 900 * MIB: b"\x01" * 4096,
                                               20 * MIB: bytes(6 * MIB)})  # written zeros: allocated, not sent
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        read.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(upload_plan.os, "pread", counting_pread)
    plan = plan_upload(path)

    assert plan.holes_reported
    assert plan.size == size + 512
    assert plan.ranges == ((10 * MIB, 12 * MIB), (12 * MIB, 13 * MIB), (900 * MIB, 900 * MIB + 4096),
                           (size, size + 512))
    check_shape(plan.ranges, plan.size)
    assert plan.bytes_to_send == 3 * MIB + 4096 + 512
    assert plan.allocated >= 9 * MIB  # what the filesystem allocated, zeros included
    assert plan.zero_bytes >= 6 * MIB and plan.zero_spans >= 1
    assert sum(read) <= plan.allocated + 512  # the data extents and the footer: no hole was read
    read.clear()
    file_sha256(path)
    assert sum(read) == plan.allocated


def test_ranges_are_page_aligned_split_at_4_mib_and_around_zero_blocks(tmp_path: Path) -> None:
    size = 32 * MIB
    big = os.urandom(10 * MIB)
    odd = b"\xff" * 1000
    gap_small, gap_big = os.urandom(8192) + bytes(16384) + os.urandom(8192), os.urandom(4096)
    path = vhd_with(tmp_path / "d.vhd", size, {
        MIB + 100: big,  # unaligned start: 100 bytes into a page
        16 * MIB + 70_000: odd,  # inside a page, crossing none
        20 * MIB: gap_small,  # a 16 KiB zero gap: sent with its neighbours
        24 * MIB: os.urandom(4096), 24 * MIB + 256 * 1024: gap_big,  # 248 KiB of holes between: split
    })
    plan = plan_upload(path)
    check_shape(plan.ranges, plan.size)
    assert plan.ranges[:4] == ((MIB, 4 * MIB), (4 * MIB, 8 * MIB), (8 * MIB, 11 * MIB + 512),
                               (16 * MIB + 69_632, 16 * MIB + 71_168))
    assert (20 * MIB, 20 * MIB + 32768) in plan.ranges
    assert (24 * MIB, 24 * MIB + 4096) in plan.ranges
    assert (24 * MIB + 256 * 1024, 24 * MIB + 260 * 1024) in plan.ranges
    with open(path, "rb") as fh:  # everything left out is zeros
        content = fh.read()
    sent = bytearray(len(content))
    for start, end in plan.ranges:
        sent[start:end] = content[start:end]
    assert bytes(sent) == content


def test_digest_depends_on_content_only(tmp_path: Path) -> None:
    size = 16 * MIB
    payload = {3 * MIB: os.urandom(2 * MIB), 9 * MIB + 512: os.urandom(700)}
    sparse = plan_upload(vhd_with(tmp_path / "sparse.vhd", size, payload))
    dense_path = tmp_path / "dense.vhd"
    dense_path.write_bytes((tmp_path / "sparse.vhd").read_bytes())  # the same bytes, zeros written: no holes
    dense = plan_upload(dense_path)
    assert os.stat(dense_path).st_blocks * 512 > size
    assert dense.digest == sparse.digest
    want = hashlib.sha256(dense_path.read_bytes()).hexdigest()
    assert file_sha256(dense_path) == file_sha256(tmp_path / "sparse.vhd") == want
    assert dense.ranges == sparse.ranges  # the written zeros are not sent either
    assert dense.zero_bytes >= size - 3 * MIB

    other = plan_upload(vhd_with(tmp_path / "other.vhd", size, {**payload, 12 * MIB: b"\x01"}))
    assert other.digest != sparse.digest
    moved = plan_upload(vhd_with(tmp_path / "moved.vhd", size, {4 * MIB: payload[3 * MIB]}))
    assert moved.digest != plan_upload(vhd_with(tmp_path / "at3.vhd", size, {3 * MIB: payload[3 * MIB]})).digest


def test_digest_of_chunks_fed_from_elsewhere_matches(tmp_path: Path) -> None:
    """The blob side feeds only chunks that hold pages, zeros around them: the same digest."""
    size = 12 * MIB
    data = os.urandom(MIB)
    plan = plan_upload(vhd_with(tmp_path / "d.vhd", size, {5 * MIB: data}))
    with open(tmp_path / "d.vhd", "rb") as fh:
        content = fh.read()
    digest = ContentDigest(len(content))
    for index in (0, 1, 3):  # chunk 0 read back as zeros (e.g. a page range of zeros), chunk 2 absent
        digest.add(index, content[index * CHUNK: (index + 1) * CHUNK])
    assert digest.hexdigest() == plan.digest
    with pytest.raises(ValueError, match="increasing order"):
        digest.add(1, b"")


def test_nonzero_spans_in_one_chunk() -> None:
    chunk = bytearray(CHUNK)
    chunk[5000:5001] = b"\x01"  # one byte: its page only
    chunk[200_000:200_100] = b"\x02" * 100
    chunk[200_100 + 30_000:200_100 + 30_001] = b"\x03"  # 30 KB later, in the next 64 KiB block: one span
    assert nonzero_spans(chunk, 8 * MIB) == [(8 * MIB + 4608, 8 * MIB + 5120),
                                             (8 * MIB + 199_680, 8 * MIB + 230_400)]
    assert nonzero_spans(bytes(CHUNK), 0) == []
    assert nonzero_spans(b"\x01" * 1536, 0) == [(0, 1536)]
    with pytest.raises(ValueError, match="multiples of 512"):
        nonzero_spans(b"", 100)


def test_span_arithmetic() -> None:
    assert merge([(10, 20), (0, 5), (5, 8), (15, 30)]) == [(0, 8), (10, 30)]
    assert subtract([(0, 100), (200, 300)], [(10, 20), (50, 250)]) == [(0, 10), (20, 50), (250, 300)]
    assert subtract([(0, 10)], []) == [(0, 10)]
    planned = [(0, 512), (512, 2048), (4096, 8192)]
    assert missing(planned, [(0, 1024), (1024, 2048), (4096, 6144)]) == [(4096, 8192)]
    assert missing(planned, [(0, 8192)]) == []


def test_a_file_azure_would_not_take_is_refused_with_every_broken_rule(tmp_path: Path) -> None:
    path = tmp_path / "bad.vhd"
    with open(path, "wb") as fh:  # a dynamic disk's footer on a file whose size it does not match
        fh.truncate(4 * MIB)
        fh.seek(4 * MIB - 512)
        fh.write(make_footer(MIB + 512, disk_type=3))
    with pytest.raises(DiskError) as err:
        plan_upload(path)
    assert {"vhd.disk_type", "vhd.current_size", "vhd.whole_mib"} <= {what for what, _ in err.value.problems}
    assert err.value.source == str(path)
