"""Format detection from the bytes, refusals of what is not a disk image, and virtual sizes."""

from __future__ import annotations

import gzip
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from image_factory.disks import MIB, DiskError
from image_factory.disks.formats import detect_format, virtual_size
from image_factory.disks.vhd import DIFFERENCING
from tests.plugins.image_factory.disks.builders import FORMATS, sh

DETECTED = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vhd-fixed", "vhd-dynamic": "vhd-dynamic",
            "vhdx": "vhdx"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_each_format_is_detected_from_its_bytes(disk_factory: Callable[..., Path], fmt: str, table: str) -> None:
    p = disk_factory(f"{table}-disk.img", fmt=fmt, table=table)  # one suffix for all: the name does not decide
    detected = detect_format(p)
    assert detected.format == DETECTED[fmt], detected
    size = virtual_size(p, detected)
    # qemu's dynamic VHD rounds 8 MiB up to its CHS geometry (8 MiB + 2 KiB); the others keep it exactly
    assert size == (8 * MIB + 2048 if fmt == "vhd-dynamic" else 8 * MIB)


def test_a_vmdk_descriptor_with_a_flat_extent(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    raw = disk_factory("flat-src.raw")
    vmdk = tmp_path / "flat.vmdk"
    sh("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", str(raw), str(vmdk))
    detected = detect_format(vmdk)
    assert detected.format == "vmdk" and "descriptor" in detected.evidence
    assert virtual_size(vmdk, detected) == 8 * MIB
    (tmp_path / "flat-flat.vmdk").unlink()
    with pytest.raises(DiskError, match="qemu-img cannot open it as vmdk"):
        virtual_size(vmdk, detected)


def test_a_bare_filesystem_is_a_raw_disk(tmp_path: Path) -> None:
    p = tmp_path / "fs.img"
    with open(p, "wb") as fh:
        fh.truncate(4 * MIB)
    sh("mkfs.ext4", "-F", "-q", str(p))
    assert detect_format(p).evidence == "raw disk: a bare ext4 filesystem (superblock at its start)"


def refusal(p: Path) -> str:
    with pytest.raises(DiskError) as caught:
        detect_format(p)
    assert [what for what, _ in caught.value.problems] == ["format"]
    return str(caught.value)


def test_what_is_not_a_disk_image_is_refused_saying_what_it_is(tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.touch()
    assert "the file is empty" in refusal(empty)
    text = tmp_path / "notes.img"
    text.write_text("this is not a disk\n" * 100)
    assert "a text file" in refusal(text)
    zeros = tmp_path / "zeros.img"
    zeros.write_bytes(bytes(MIB))
    assert "are zeros" in refusal(zeros)
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"\x01" * 1000)
    assert "whole number of 512-byte sectors, the file has 1000 bytes" in refusal(odd)
    tarball = tmp_path / "disk.ova"
    with tarfile.open(tarball, "w") as tar:
        tar.add(text, arcname="disk.vmdk")
    assert "a tar archive" in refusal(tarball)
    gz = tmp_path / "disk.raw.gz"
    gz.write_bytes(gzip.compress(bytes(MIB)))
    assert "gzip-compressed (decompress it first)" in refusal(gz)


def test_an_iso_is_refused_as_an_iso(tmp_path: Path) -> None:
    (tmp_path / "cd").mkdir()
    (tmp_path / "cd" / "README").write_text("hello\n")
    iso = tmp_path / "install.iso"
    sh("genisoimage", "-quiet", "-o", str(iso), str(tmp_path / "cd"))
    assert "an ISO 9660 (CD/DVD) image" in refusal(iso)


def test_a_raw_file_without_partition_table_or_filesystem_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "noise.img"
    p.write_bytes(bytes(range(256)) * 4096)
    assert "no MBR or GPT and no filesystem superblock" in refusal(p)


def test_differencing_disks_are_refused(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    base = disk_factory("base.qcow2", fmt="qcow2")
    child = tmp_path / "child.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(child))
    assert "a differencing disk is refused: this qcow2 has a backing file" in refusal(child)

    vbase = disk_factory("base.vmdk", fmt="vmdk")
    vchild = tmp_path / "child.vmdk"
    sh("qemu-img", "create", "-q", "-f", "vmdk", "-b", str(vbase), "-F", "vmdk", str(vchild))
    assert "this VMDK names a parent disk" in refusal(vchild)

    vhd = tmp_path / "diff.vhd"
    vhd.write_bytes(disk_factory("dyn.vhd", fmt="vhd-dynamic").read_bytes())
    with open(vhd, "r+b") as fh:  # a differencing VHD has disk type 4 in its footer copy at offset 0
        fh.seek(60)
        fh.write(struct.pack(">I", DIFFERENCING))
    assert "this VHD's disk type is Differencing" in refusal(vhd)


def test_a_file_that_claims_to_be_a_vhd_is_taken_at_its_word(disk_factory: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    """A .vhd without footer is a broken VHD (the converter then names the rule), not a raw disk."""
    named = tmp_path / "server.vhd"
    named.write_bytes(disk_factory("plain.raw").read_bytes())
    assert detect_format(named).format == "vhd-fixed"
    fixed = tmp_path / "nocookie.img"
    fixed.write_bytes(disk_factory("fixed.vhd", fmt="vhd").read_bytes())
    with open(fixed, "r+b") as fh:
        fh.seek(-512, 2)
        fh.write(b"garbage!")
    detected = detect_format(fixed)
    assert detected.format == "vhd-fixed" and "lack its cookie" in detected.evidence
