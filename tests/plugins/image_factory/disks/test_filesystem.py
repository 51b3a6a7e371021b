"""Files of an ext4 root read with debugfs at a partition offset, in raw and fixed VHD files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from image_factory.disks import MIB
from image_factory.disks.filesystem import ExtFilesystem, FilesystemError, file_reader, probe


@pytest.mark.parametrize("fmt", ["raw", "vhd"])
def test_files_are_read_at_the_partition_offset(disk_factory: Callable[..., Path], fmt: str) -> None:
    fs = ExtFilesystem(disk_factory(f"special.{fmt}", fmt=fmt, generalized=False), MIB)
    assert fs.read_text("/etc/hostname") == "localhost\n"
    # /etc/os-release is a relative link, /var/lib/cloud/instance an absolute one: both stay inside the image
    assert "ID=debian" in (fs.read_text("/etc/os-release") or "")
    assert fs.resolve("/etc/os-release") == "/usr/lib/os-release"
    assert fs.resolve("/var/lib/cloud/instance/boot-finished") == "/var/lib/cloud/instances/iid-local01/boot-finished"
    assert fs.read("/etc/nothing-here") is None
    names = {e.name: e for e in fs.listdir("/etc/ssh") or []}
    assert {"ssh_host_ed25519_key", "sshd_config"} <= set(names)
    assert names["ssh_host_ed25519_key"].mode & 0o777 == 0o600 and not names["ssh_host_ed25519_key"].is_dir
    assert fs.listdir("/no/such/dir") is None
    assert fs.is_dir("/home/alice") and not fs.is_dir("/etc/hostname") and not fs.exists("/home/bob")


def test_where_there_is_no_ext_filesystem_debugfs_says_so(disk_factory: Callable[..., Path]) -> None:
    p = disk_factory("plain.raw")
    with pytest.raises(FilesystemError, match="no ext2/3/4 filesystem at byte 0"):
        ExtFilesystem(p, 0)  # the MBR, not the partition


def test_probe_names_the_filesystem(disk_factory: Callable[..., Path]) -> None:
    read = file_reader(disk_factory("plain.raw"))
    assert probe(read, MIB) == "ext4"
    assert probe(read, 0) is None
    ntfs = bytearray(4096)
    ntfs[3:11] = b"NTFS    "
    assert probe(lambda offset, n: bytes(ntfs[offset:offset + n]), 0) == "ntfs"
