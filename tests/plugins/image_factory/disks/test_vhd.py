"""The fixed VHD footer: a sound one passes, and each broken rule is named (all of them at once)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from image_factory.disks import MIB, DiskError
from image_factory.disks.vhd import (
    DYNAMIC,
    FOOTER_SIZE,
    append_footer,
    check_fixed,
    checksum,
    make_footer,
    parse_footer,
    read_footer,
)
from tests.plugins.image_factory.disks.builders import build_disk, sh


def fixed(tmp_path: Path, size: int = 2 * MIB) -> Path:
    p = tmp_path / "disk.vhd"
    with open(p, "wb") as fh:
        fh.truncate(size)
    return append_footer(p)


def rewrite(path: Path, at: int, data: bytes, *, fix_checksum: bool = True) -> None:
    """Change footer bytes at ``at`` (footer-relative), with a matching checksum unless told otherwise."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size - FOOTER_SIZE)
        raw = bytearray(fh.read(FOOTER_SIZE))
        raw[at:at + len(data)] = data
        if fix_checksum:
            raw[64:68] = struct.pack(">I", checksum(bytes(raw)))
        fh.seek(size - FOOTER_SIZE)
        fh.write(raw)


def rules(exc: pytest.ExceptionInfo[DiskError]) -> list[str]:
    return [what for what, _ in exc.value.problems]


def test_a_written_footer_is_sound_and_qemu_reads_the_same_size(tmp_path: Path) -> None:
    p = fixed(tmp_path, 3 * MIB)
    footer = check_fixed(p)
    assert footer.current_size == 3 * MIB and footer.type_name == "Fixed"
    assert p.stat().st_size == 3 * MIB + FOOTER_SIZE
    info = sh("qemu-img", "info", "--image-opts", f"driver=vpc,force_size_calc=current_size,file.filename={p}")
    assert "3 MiB" in info


def test_qemu_img_fixed_output_passes(tmp_path: Path) -> None:
    p = build_disk(tmp_path / "q.vhd", fmt="vhd", size_mib=4)
    assert check_fixed(p).current_size == 4 * MIB


@pytest.mark.parametrize(("at", "data", "rule"), [
    (0, b"notavhd!", "vhd.cookie"),
    (60, struct.pack(">I", DYNAMIC), "vhd.disk_type"),
    (16, struct.pack(">Q", 512), "vhd.data_offset"),
    (48, struct.pack(">Q", MIB), "vhd.current_size"),
])
def test_each_broken_field_is_named(tmp_path: Path, at: int, data: bytes, rule: str) -> None:
    p = fixed(tmp_path)
    rewrite(p, at, data)
    with pytest.raises(DiskError) as caught:
        check_fixed(p)
    assert rules(caught) == [rule], caught.value.problems
    assert str(caught.value).startswith(f"disk.vhd: {rule}: ")


def test_a_corrupt_footer_fails_its_checksum(tmp_path: Path) -> None:
    p = fixed(tmp_path)
    rewrite(p, 100, b"\x01", fix_checksum=False)  # a flipped byte in the unique id
    with pytest.raises(DiskError) as caught:
        check_fixed(p)
    assert rules(caught) == ["vhd.checksum"]
    assert "one's complement" in str(caught.value)


def test_a_size_that_is_not_whole_mib_is_named_with_the_next_whole_size(tmp_path: Path) -> None:
    p = fixed(tmp_path)  # 2 MiB of data, then make it 2 MiB + 4 KiB consistently
    data = 2 * MIB + 4096
    with open(p, "r+b") as fh:
        fh.truncate(data)
        fh.seek(data)
        fh.write(make_footer(data))
    with pytest.raises(DiskError) as caught:
        check_fixed(p)
    assert rules(caught) == ["vhd.whole_mib"]
    assert "3 MiB" in str(caught.value)
    odd = tmp_path / "odd.raw"
    odd.write_bytes(bytes(4096))
    with pytest.raises(DiskError, match=r"vhd\.whole_mib"):
        append_footer(odd)
    assert odd.stat().st_size == 4096  # refused before writing anything


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    p = fixed(tmp_path)
    rewrite(p, 60, struct.pack(">I", DYNAMIC))
    rewrite(p, 16, struct.pack(">Q", 512))
    rewrite(p, 48, struct.pack(">Q", MIB + 7), fix_checksum=False)
    with pytest.raises(DiskError) as caught:
        check_fixed(p)
    assert rules(caught) == ["vhd.checksum", "vhd.disk_type", "vhd.data_offset", "vhd.current_size", "vhd.whole_mib"]


def test_a_file_shorter_than_a_footer(tmp_path: Path) -> None:
    p = tmp_path / "tiny.vhd"
    p.write_bytes(b"conectix")
    assert read_footer(p) == (None, 8)
    with pytest.raises(DiskError) as caught:
        check_fixed(p)
    assert rules(caught) == ["vhd.footer"]


def test_parse_footer_reads_the_fields_make_footer_writes() -> None:
    f = parse_footer(make_footer(5 * MIB, disk_type=DYNAMIC))
    assert (f.cookie, f.current_size, f.original_size, f.disk_type, f.data_offset) == (
        b"conectix", 5 * MIB, 5 * MIB, DYNAMIC, 512)
    assert f.checksum == f.computed_checksum
