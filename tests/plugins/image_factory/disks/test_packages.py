"""The package manifest read from a disk's dpkg database (an import's lineage has no VM to ask)."""

from __future__ import annotations

from pathlib import Path

from image_factory.disks.inspection import inspect_disk
from image_factory.disks.packages import installed_packages, parse_dpkg_status
from tests.plugins.image_factory.disks.builders import DPKG_STATUS, PACKAGES, build_disk


def test_only_installed_packages_count_with_foreign_architectures_named() -> None:
    text = DPKG_STATUS + "\nPackage: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9\n"
    assert parse_dpkg_status(text) == sorted([*PACKAGES, "libc6:i386=2.36-9"])
    assert parse_dpkg_status("") == []


def test_the_manifest_comes_off_the_disk_itself(tmp_path: Path) -> None:
    disk = build_disk(tmp_path / "disk.vhd", fmt="vhd", table="gpt")
    assert installed_packages(inspect_disk(disk)) == list(PACKAGES)
    blank = tmp_path / "blank.raw"
    blank.write_bytes(b"\0" * 510 + b"\x55\xaa" + b"\0" * (4 * 1024 * 1024 - 512))  # an MBR with no partition
    assert installed_packages(inspect_disk(blank)) == []
