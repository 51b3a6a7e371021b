"""Conversion of every format to a sound fixed whole-MiB VHD holding the same data, reused on rerun."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from image_factory.disks import MIB, DiskError
from image_factory.disks.convert import convert_to_fixed_vhd, input_digest, plan_conversion
from image_factory.disks.formats import detect_format, qemu_source
from image_factory.disks.vhd import FOOTER_SIZE, check_fixed, make_footer
from tests.plugins.image_factory.disks.builders import FORMATS, sh


def same_data(source: Path, output: Path) -> None:
    src = qemu_source(source, detect_format(source))
    opts = src[1] if src[0] == "--image-opts" else f"driver={src[1]},file.filename={src[2]}"
    sh("qemu-img", "compare", "--image-opts", opts, f"driver=vpc,file.filename={output}")  # exit 1 on a difference


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "vhd"])
def test_each_format_becomes_a_fixed_whole_mib_vhd_with_the_same_data(disk_factory: Callable[..., Path],
                                                                      tmp_path: Path, fmt: str) -> None:
    source = disk_factory(f"special.{fmt}", fmt=fmt, table="gpt", generalized=False)
    result = convert_to_fixed_vhd(source, tmp_path, verify=False)
    assert result.converted and not result.reused and result.output.parent == tmp_path
    footer = check_fixed(result.output)
    assert footer.current_size == result.virtual_size and result.virtual_size % MIB == 0
    assert result.output.stat().st_size == result.virtual_size + FOOTER_SIZE
    assert result.bytes_allocated < result.virtual_size // 2  # the zero blocks stayed holes
    same_data(source, result.output)
    if fmt == "vhd-dynamic":  # 8 MiB + 2 KiB of CHS geometry
        assert result.rounded_up and result.virtual_size == 9 * MIB and "rounded up to 9 MiB" in result.note
    else:
        assert not result.rounded_up and result.virtual_size == 8 * MIB
    assert [p.name for p in tmp_path.iterdir()] == [result.output.name]  # no partial file left


def test_an_unaligned_size_is_rounded_up_and_said(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    source = tmp_path / "odd.qcow2"
    sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(disk_factory("gen.raw")), str(source))
    sh("qemu-img", "resize", "-q", "-f", "qcow2", str(source), str(8 * MIB + 3584))
    result = convert_to_fixed_vhd(source, tmp_path / "work")  # verify=True: qemu-img compare inside
    assert (result.source_virtual_size, result.virtual_size) == (8 * MIB + 3584, 9 * MIB)
    assert "was rounded up to 9 MiB" in result.note
    same_data(source, result.output)


def test_a_sound_fixed_vhd_is_used_as_it_is(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    source = disk_factory("gen.vhd", fmt="vhd")
    result = convert_to_fixed_vhd(source, tmp_path)
    assert (result.converted, result.output, result.virtual_size) == (False, source, 8 * MIB)
    assert list(tmp_path.iterdir()) == []


def test_a_rerun_reuses_the_finished_output(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    source = disk_factory("gen.qcow2", fmt="qcow2")
    first = convert_to_fixed_vhd(source, tmp_path)
    stamp = first.output.stat().st_mtime_ns
    (tmp_path / f".{first.output.name}.dead0001.partial").write_bytes(b"left by a killed run")
    again = convert_to_fixed_vhd(source, tmp_path)
    assert again.reused and again.output == first.output and again.output.stat().st_mtime_ns == stamp
    damaged = first.output.read_bytes()[:-1]  # an output that is not sound is made again, not trusted
    first.output.write_bytes(damaged)
    third = convert_to_fixed_vhd(source, tmp_path)
    assert not third.reused and check_fixed(third.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.output.name]


def test_the_digest_follows_the_content(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    a = disk_factory("gen.raw")
    b = tmp_path / "b.raw"
    b.write_bytes(a.read_bytes())  # a copy with its holes written as zeros
    assert b.stat().st_blocks > a.stat().st_blocks
    assert input_digest(b) == input_digest(a) == input_digest(a)
    with open(b, "r+b") as fh:
        fh.seek(5 * MIB)
        fh.write(b"x")
    assert input_digest(b) != input_digest(a)


@pytest.mark.parametrize(("damage", "rule"), [("checksum", "vhd.checksum"), ("unaligned", "vhd.whole_mib"),
                                              ("cookie", "vhd.cookie")])
def test_a_broken_fixed_vhd_is_refused_not_rewritten(disk_factory: Callable[..., Path], tmp_path: Path,
                                                     damage: str, rule: str) -> None:
    p = tmp_path / "in.vhd"
    data = bytearray(disk_factory("gen.vhd", fmt="vhd").read_bytes())
    if damage == "checksum":
        data[-400] ^= 0xFF
    elif damage == "cookie":
        data[-512:-504] = b"xonectix"
    else:  # 8 MiB + 1 KiB of data with a footer that says so, checksum right
        data = data[:-512] + bytes(1024) + make_footer(8 * MIB + 1024)
    p.write_bytes(bytes(data))
    with pytest.raises(DiskError) as caught:
        convert_to_fixed_vhd(p, tmp_path / "work")
    assert rule in [what for what, _ in caught.value.problems]
    assert p.read_bytes() == bytes(data) and not (tmp_path / "work").exists()


def test_plan_says_what_would_happen(disk_factory: Callable[..., Path]) -> None:
    plan = plan_conversion(disk_factory("dyn.vhd", fmt="vhd-dynamic"))
    assert plan.convert and plan.rounded_up and plan.target_size == 9 * MIB
