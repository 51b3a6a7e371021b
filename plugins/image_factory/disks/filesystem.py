"""What filesystem a partition holds, and the files of an ext2/3/4 one, read without mounting.

``probe`` tells filesystems apart by their superblock magic. ``ExtFilesystem`` reads files and
lists directories with e2fsprogs' ``debugfs``, opened read-only on ``image?offset=<bytes>``:
no loop device, mount or root. That works on any file whose disk data starts at byte 0 and is
stored as is: a raw image and a fixed VHD (whose footer is at the end). Other formats (qcow2,
VMDK, dynamic VHD, VHDX) store their data in clusters or blocks: ``inspect`` converts them to a
sparse raw file in a temporary directory first, which qemu-img does in about the time it takes
to read their allocated data.

Symbolic links are followed inside the filesystem (``/etc/os-release`` is a link on Debian), so
an absolute link never escapes to the host.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from image_factory.disks import run, tool

Reader = Callable[[int, int], bytes]  # (offset, length) -> bytes, short at the end of the disk

EXT_MAGIC = 0xEF53
_EXT_INCOMPAT_EXT4 = 0x0040 | 0x0080 | 0x0200  # extents, 64bit, flex_bg
_EXT_COMPAT_JOURNAL = 0x0004
_MAX_LINKS = 40  # as the kernel's MAXSYMLINKS


def file_reader(path: str | os.PathLike[str]) -> Reader:
    """A reader over a file's bytes as they are (raw images and fixed VHDs)."""
    def read(offset: int, length: int) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)
    return read


def probe(read: Reader, offset: int = 0) -> str | None:
    """The filesystem whose superblock starts at ``offset`` (ext2/ext3/ext4, xfs, btrfs, ntfs, vfat, swap), else None."""
    head = read(offset, 4096)
    if len(head) >= 1024 + 104:
        magic, = struct.unpack_from("<H", head, 1024 + 56)
        if magic == EXT_MAGIC:
            compat, incompat = struct.unpack_from("<II", head, 1024 + 92)
            if incompat & _EXT_INCOMPAT_EXT4:
                return "ext4"
            return "ext3" if compat & _EXT_COMPAT_JOURNAL else "ext2"
    if head[:4] == b"XFSB":
        return "xfs"
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    if head[510:512] == b"\x55\xaa" and (head[82:87] == b"FAT32" or head[54:59] in (b"FAT12", b"FAT16")):
        return "vfat"
    if len(head) == 4096 and head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return "swap"
    if read(offset + 0x10040, 8) == b"_BHRfS_M":
        return "btrfs"
    return None


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    uid: int
    gid: int
    size: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


class FilesystemError(RuntimeError):
    """debugfs could not open the filesystem (not ext2/3/4, or damaged)."""


_LS_LINE = re.compile(r"^/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/$")
_FAST_LINK = re.compile(r'^Fast link dest: "(.*)"$', re.MULTILINE)
_NOT_FOUND = "File not found by ext2_lookup"


class ExtFilesystem:
    """Read-only access to the ext2/3/4 filesystem at byte ``offset`` of ``image`` (a raw or fixed VHD file)."""

    def __init__(self, image: str | os.PathLike[str], offset: int = 0) -> None:
        self.image = Path(image)
        self.offset = offset
        self._device = f"{self.image}?offset={offset}" if offset else str(self.image)
        self._debugfs("stats -h")  # fails here, once, when there is no ext filesystem to open

    def _debugfs(self, request: str) -> str:
        try:
            proc = run("debugfs", "-R", request, self._device, timeout=120)
        except subprocess.CalledProcessError as exc:
            raise FilesystemError(f"debugfs cannot open an ext2/3/4 filesystem at byte {self.offset} of "
                                  f"{self.image.name}: {exc.stderr.strip().splitlines()[-1:]}") from exc
        if "Bad magic number in super-block" in proc.stderr or "Filesystem not open" in proc.stderr:
            raise FilesystemError(f"no ext2/3/4 filesystem at byte {self.offset} of {self.image.name}")
        if _NOT_FOUND in proc.stderr:
            raise FileNotFoundError(request)
        return proc.stdout

    @staticmethod
    def _quote(path: str) -> str:
        if '"' in path or "\n" in path:
            raise ValueError(f"debugfs cannot name a path holding a quote or newline: {path!r}")
        return f'"{path}"'

    def _link_target(self, path: str) -> str | None:
        """Where the symbolic link ``path`` points, None when ``path`` is not a link."""
        out = self._debugfs(f"stat {self._quote(path)}")
        if "Type: symlink" not in out:
            return None
        fast = _FAST_LINK.search(out)
        if fast:
            return fast.group(1)
        return self._debugfs(f"cat {self._quote(path)}")  # a long target lives in a data block

    def resolve(self, path: str) -> str:
        """``path`` with every symbolic link resolved inside this filesystem; FileNotFoundError when absent."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        done = "/"
        hops = 0
        while parts:
            candidate = posixpath.join(done, parts.pop(0))
            target = self._link_target(candidate)
            if target is None:
                done = candidate
                continue
            hops += 1
            if hops > _MAX_LINKS:
                raise FileNotFoundError(f"{path}: too many levels of symbolic links")
            base = "/" if target.startswith("/") else done
            parts = [p for p in posixpath.normpath(posixpath.join(base, target)).split("/") if p] + parts
            done = "/"
        return done

    def read(self, path: str) -> bytes | None:
        """The content of the file at ``path`` (links followed), None when there is none."""
        try:
            real = self.resolve(path)
        except FileNotFoundError:
            return None
        proc = subprocess.run([tool("debugfs"), "-R", f"cat {self._quote(real)}", self._device], capture_output=True,
                              timeout=600)
        if proc.returncode != 0 or _NOT_FOUND.encode() in proc.stderr:
            return None
        return proc.stdout

    def read_text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def listdir(self, path: str) -> list[Entry] | None:
        """The entries of the directory at ``path`` (links followed; no ``.``/``..``), None when there is none."""
        try:
            out = self._debugfs(f"ls -p {self._quote(self.resolve(path))}")
        except FileNotFoundError:
            return None
        entries = []
        for line in out.splitlines():
            m = _LS_LINE.match(line)
            if m and m.group(5) not in (".", ".."):
                entries.append(Entry(m.group(5), int(m.group(2), 8), int(m.group(3)), int(m.group(4)),
                                     int(m.group(6) or 0)))
        return entries

    def exists(self, path: str) -> bool:
        try:
            self.resolve(path)
        except FileNotFoundError:
            return False
        return True

    def is_dir(self, path: str) -> bool:
        """True for a directory (links followed)."""
        try:
            out = self._debugfs(f"stat {self._quote(self.resolve(path))}")
        except FileNotFoundError:
            return False
        return "Type: directory" in out
