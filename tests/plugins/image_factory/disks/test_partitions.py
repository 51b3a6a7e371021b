"""MBR and GPT read from real sfdisk-made disks, and the Hyper-V generation each boots as."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from image_factory.disks import MIB
from image_factory.disks.filesystem import file_reader
from image_factory.disks.partitions import (
    PartitionTable,
    PartitionTableError,
    boot_generations,
    read_partition_table,
)


def table_of(p: Path) -> PartitionTable:
    return read_partition_table(file_reader(p), p.stat().st_size)


def test_an_mbr_disk_boots_as_v1(disk_factory: Callable[..., Path]) -> None:
    table = table_of(disk_factory("mbr.raw"))
    assert table.scheme == "mbr"
    [root] = table.partitions
    assert (root.number, root.start, root.size, root.type, root.bootable) == (1, MIB, 7 * MIB, "0x83", True)
    boot = boot_generations(table)
    assert boot.generations == {"V1"}
    assert str(boot) == "an MBR partition table and no EFI system partition (it boots as V1)"


def test_a_gpt_disk_with_an_esp_boots_as_v2(disk_factory: Callable[..., Path]) -> None:
    table = table_of(disk_factory("gpt.raw", table="gpt"))
    assert table.scheme == "gpt"
    esp, root = table.partitions
    assert esp.is_esp and esp.type_name == "EFI system partition" and esp.name == "EFI System"
    assert (esp.start, esp.size, root.start, root.size) == (MIB, MIB, 2 * MIB, 5 * MIB)
    assert root.type_name == "Linux filesystem"
    assert boot_generations(table).generations == {"V2"}


@pytest.mark.parametrize(("esp", "bios", "generations", "words"), [
    (True, True, {"V1", "V2"}, "it boots as V1 or V2"),
    (False, True, {"V1"}, "BIOS boot partition (partition 1) and no EFI system partition"),
    (False, False, set(), "neither an EFI system partition"),
])
def test_gpt_with_a_bios_boot_partition_boots_as_v1(disk_factory: Callable[..., Path], esp: bool, bios: bool,
                                                     generations: set[str], words: str) -> None:
    boot = boot_generations(table_of(disk_factory(f"gpt-{esp}-{bios}.raw", table="gpt", esp=esp, bios_boot=bios)))
    assert boot.generations == generations
    assert words in str(boot)


def test_a_corrupt_gpt_header_is_an_error(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    p = tmp_path / "bad.raw"
    p.write_bytes(disk_factory("gpt.raw", table="gpt").read_bytes())
    with open(p, "r+b") as fh:
        fh.seek(512 + 40)  # first usable LBA: the header's CRC no longer matches
        fh.write(b"\x07")
    with pytest.raises(PartitionTableError, match="GPT header checksum"):
        table_of(p)


def test_a_disk_without_a_table(tmp_path: Path) -> None:
    p = tmp_path / "blank.raw"
    p.write_bytes(bytes(MIB))
    table = table_of(p)
    assert table.scheme == "none"
    assert boot_generations(table).generations == frozenset()
