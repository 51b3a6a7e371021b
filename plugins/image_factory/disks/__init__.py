"""Disk files to import (pure: no Airflow, no Azure): what a file is, what is wrong with it, and its fixed VHD.

An on-premises disk (raw, qcow2, VMDK, VHD, VHDX) becomes a gallery image only as a fixed VHD
whose size is a whole number of MiB. These modules answer, before anything is uploaded or
created: which format is the file (``formats``), is its VHD footer sound (``vhd``), how does it
boot (``partitions``), what does its Linux root filesystem say about it (``filesystem``,
``inspection``), and they turn it into the fixed VHD (``convert``). Everything is read from the
file's bytes or with qemu-img and e2fsprogs' debugfs: no mounts, loop devices or root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from image_factory.errors import PermanentError

SECTOR = 512  # the logical sector size of every disk Azure takes (VHD has no other)
MIB = 1024 * 1024


class DiskError(PermanentError, ValueError):
    """A disk file the factory refuses: each problem as ``(what, rule)``, all reported at once.

    ``what`` names the broken rule's subject: a VHD footer field (``vhd.checksum``), the file
    (``format``) or, for a disk that contradicts its image definition, the definition field
    (``image.os_state``).
    """

    def __init__(self, source: str | os.PathLike[str], problems: Sequence[tuple[str, str]]) -> None:
        self.source = str(source)
        self.problems = list(problems)
        lines = [f"{what}: {rule}" for what, rule in self.problems]
        name = Path(self.source).name
        super().__init__(f"{name}: {lines[0]}" if len(lines) == 1 else f"{name}:\n  " + "\n  ".join(lines))


class ToolMissing(PermanentError):
    """A command-line tool the disk checks need is not installed (names the Debian package)."""


_PACKAGES = {"qemu-img": "qemu-utils", "debugfs": "e2fsprogs"}


def tool(name: str) -> str:
    """Absolute path of ``name``, also found in sbin when PATH lacks it (non-login shells)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not found:
        raise ToolMissing(f"{name} is needed to read disk files: install the {_PACKAGES.get(name, name)} package")
    return found


def run(*cmd: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run a tool; a failure raises with its stderr (the caller words what it means)."""
    proc = subprocess.run([tool(cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
    return proc
