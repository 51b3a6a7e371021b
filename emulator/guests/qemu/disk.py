"""Root filesystem directory -> partitioned qcow2, with no loop device, mount or root needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from emulator.guests.qemu.tools import tool

PARTITION_START = 2048  # sectors: 1 MiB, where partitioning tools (and Azure images) put it
SECTOR = 512


def _run(*cmd: str, stdin: str | None = None) -> None:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed: {proc.stderr.strip()[-2000:]}")


def make_disk(rootfs: Path, qcow2: Path, root_uuid: str, size_mib: int) -> None:
    """MBR disk of ``size_mib`` with one ext4 partition (UUID ``root_uuid``) holding ``rootfs``."""
    raw = qcow2.with_suffix(".raw")
    try:
        with open(raw, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        _run(tool("sfdisk"), "--quiet", str(raw), stdin=f"label: dos\nstart={PARTITION_START}, type=83, bootable\n")
        offset = PARTITION_START * SECTOR
        _run(
            tool("mkfs.ext4"),
            "-F",
            "-q",
            "-U",
            root_uuid,
            "-L",
            "root",
            "-E",
            f"offset={offset}",
            "-d",
            str(rootfs),
            str(raw),
            f"{size_mib - 1}M",
        )
        _run(tool("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    finally:
        raw.unlink(missing_ok=True)


def virtual_size(qcow2: Path) -> int:
    import json

    out = subprocess.run(
        [tool("qemu-img"), "info", "--output=json", str(qcow2)], check=True, capture_output=True, text=True
    ).stdout
    return int(json.loads(out)["virtual-size"])
