"""Reading a raw disk image the way firmware and a bootloader do: partition table, then ext2/3/4 files.

Nothing is mounted and no loop device is used, so this works unprivileged: the MBR (with its
extended-partition chain) or GPT is parsed here, each partition's ext superblock is checked for
its magic and UUID, and files are read with e2fsprogs' ``debugfs``, which opens a filesystem at
a byte offset inside an image (``image?offset=N``) read-only. Many reads go to one ``debugfs``
process (commands on stdin) because opening a large filesystem costs more than reading a file.
"""

from __future__ import annotations

import os
import posixpath
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from emulator.guests.qemu.tools import tool

SECTOR = 512
EXT_MAGIC = 0xEF53
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
GPT_PROTECTIVE = 0xEE
DEBUGFS_TIMEOUT = 300.0
MAX_LINK_HOPS = 8


class DiskReadError(RuntimeError):
    """The image could not be read (I/O, or debugfs failed)."""


@dataclass(frozen=True)
class Partition:
    number: int  # 1-based, as Linux names them (logical MBR partitions from 5)
    start: int  # byte offset in the image
    size: int  # bytes
    scheme: str  # "mbr" | "gpt"


@dataclass(frozen=True)
class Entry:
    """One directory entry as ``debugfs ls -p`` reports it."""

    path: str
    mode: int
    uid: int
    gid: int
    size: int

    @property
    def kind(self) -> str:
        return {0o040000: "dir", 0o100000: "file", 0o120000: "link"}.get(self.mode & 0o170000, "other")

    @property
    def perm(self) -> int:
        return self.mode & 0o7777


def _read(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def partitions(image: Path, data_size: int) -> list[Partition]:
    """The partitions of a disk image whose first ``data_size`` bytes are the disk (GPT or MBR)."""
    with open(image, "rb") as f:
        mbr = _read(f, 0, SECTOR)
        if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
            return []
        entries = [struct.unpack_from("<B3xBxxxII", mbr, 446 + 16 * i) for i in range(4)]
        if any(e[1] == GPT_PROTECTIVE for e in entries):
            return _gpt(f, data_size)
        found: list[Partition] = []
        for i, (_boot, ptype, lba, count) in enumerate(entries, start=1):
            if ptype == 0 or count == 0:
                continue
            if ptype in EXTENDED_TYPES:
                found += _logical(f, lba, data_size)
            else:
                found.append(Partition(i, lba * SECTOR, count * SECTOR, "mbr"))
    return [p for p in found if 0 < p.start and p.start + p.size <= data_size]


def _logical(f: BinaryIO, ext_lba: int, data_size: int) -> list[Partition]:
    """Logical partitions: a chain of EBRs, each holding one partition and a link to the next."""
    out: list[Partition] = []
    ebr_lba, number = ext_lba, 5
    while ebr_lba and len(out) < 128 and ebr_lba * SECTOR < data_size:
        ebr = _read(f, ebr_lba * SECTOR, SECTOR)
        if ebr[510:512] != b"\x55\xaa":
            break
        _, ptype, lba, count = struct.unpack_from("<B3xBxxxII", ebr, 446)
        _, next_type, next_lba, _ = struct.unpack_from("<B3xBxxxII", ebr, 462)
        if ptype and count:
            out.append(Partition(number, (ebr_lba + lba) * SECTOR, count * SECTOR, "mbr"))
            number += 1
        ebr_lba = ext_lba + next_lba if next_type in EXTENDED_TYPES and next_lba else 0
    return out


def _gpt(f: BinaryIO, data_size: int) -> list[Partition]:
    header = _read(f, SECTOR, 92)
    if header[:8] != b"EFI PART":
        return []
    table_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < 128 or count > 1024:
        return []
    table = _read(f, table_lba * SECTOR, count * entry_size)
    out = []
    for i in range(count):
        raw = table[i * entry_size:(i + 1) * entry_size]
        if len(raw) < 128 or raw[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", raw, 32)
        if last >= first:
            out.append(Partition(i + 1, first * SECTOR, (last - first + 1) * SECTOR, "gpt"))
    return [p for p in out if p.start + p.size <= data_size]


def ext_uuid(image: Path, offset: int) -> str | None:
    """The UUID of the ext2/3/4 filesystem starting at ``offset``, or None when there is none."""
    with open(image, "rb") as f:
        sb = _read(f, offset + 1024, 1024)
    if len(sb) < 1024 or struct.unpack_from("<H", sb, 56)[0] != EXT_MAGIC:
        return None
    return str(uuid.UUID(bytes=sb[104:120]))


def quotable(path: str) -> bool:
    """debugfs splits its commands on blanks and takes double quotes, but has no escapes."""
    return not any(c in path for c in '"\n\r\\')


def _quote(path: str) -> str:
    return f'"{path}"'


class ExtFs:
    """Read-only access to one ext2/3/4 filesystem inside a disk image, through ``debugfs``."""

    def __init__(self, image: Path, offset: int) -> None:
        self.image = image
        self.offset = offset
        self.spec = f"{image}?offset={offset}"

    def run(self, commands: list[str]) -> list[tuple[str, str]]:
        """Run ``commands`` in one debugfs process; (command, its stdout) for each, in order."""
        if not commands:
            return []
        try:
            proc = subprocess.run([tool("debugfs"), "-c", "-f", "-", self.spec], input="\n".join(commands) + "\n",
                                  capture_output=True, text=True, errors="surrogateescape",
                                  timeout=DEBUGFS_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DiskReadError(f"debugfs on {self.image.name} at offset {self.offset}: {exc}") from exc
        if proc.returncode != 0:
            raise DiskReadError(f"debugfs on {self.image.name} at offset {self.offset} failed: "
                                f"{proc.stderr.strip()[-500:]}")
        sections: list[tuple[str, list[str]]] = []
        for line in proc.stdout.split("\n"):
            if line.startswith("debugfs: "):
                sections.append((line[len("debugfs: "):], []))
            elif sections:
                sections[-1][1].append(line)
        return [(cmd, "\n".join(lines)) for cmd, lines in sections]

    def list_dirs(self, dirs: list[str]) -> dict[str, list[Entry]]:
        """Each directory's entries (without . and ..); a missing or unreadable directory is left out."""
        wanted = [d for d in dirs if quotable(d)]
        out: dict[str, list[Entry]] = {}
        for d, (_, text) in zip(wanted, self.run([f"ls -p {_quote(d)}" for d in wanted]), strict=False):
            entries = [e for line in text.splitlines() if (e := _entry(d, line)) is not None]
            if entries or text.strip():
                out[d] = entries
        return out

    def fetch(self, paths: list[str], into: Path) -> dict[str, Path]:
        """Copy files (or symlinks, as symlinks) out to ``into``; the host path of each one found."""
        wanted = [p for p in dict.fromkeys(paths) if quotable(p)]
        slots = []
        for i, _ in enumerate(wanted):
            slot = into / str(i)
            slot.mkdir(parents=True, exist_ok=True)
            slots.append(slot)
        self.run([f"rdump {_quote(p)} {_quote(str(slot))}" for p, slot in zip(wanted, slots, strict=True)])
        found = {}
        for p, slot in zip(wanted, slots, strict=True):
            host = slot / posixpath.basename(p)
            if host.is_symlink() or host.exists():
                if not host.is_symlink() and host.is_file() and not os.access(host, os.R_OK):
                    host.chmod(0o600)  # a 0000 file on the disk: ours now, so make it readable
                found[p] = host
        return found

    def resolve(self, path: str, into: Path) -> tuple[str, Path] | None:
        """Follow symlinks (relative ones inside this filesystem) to a regular file: (its path, host copy)."""
        for hop in range(MAX_LINK_HOPS):
            got = self.fetch([path], into / f"hop{hop}").get(path)
            if got is None:
                return None
            if not got.is_symlink():
                return (path, got) if got.is_file() else None
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), os.readlink(got)))
        return None


def _entry(directory: str, line: str) -> Entry | None:
    """``/inode/mode/uid/gid/name/size/`` (size empty for directories)."""
    line = line.strip()
    if not (line.startswith("/") and line.endswith("/")):
        return None
    parts = line[1:-1].split("/")
    if len(parts) < 6:
        return None
    name = "/".join(parts[4:-1])
    if name in (".", "..", ""):
        return None
    try:
        return Entry(posixpath.join(directory, name), int(parts[1], 8), int(parts[2]), int(parts[3]),
                     int(parts[-1] or 0))
    except ValueError:
        return None
