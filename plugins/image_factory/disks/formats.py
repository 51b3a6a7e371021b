"""Which disk format a file is, from its own bytes, and its virtual size.

The bytes decide, never the file name alone: qemu-img is then told the format (``-f``), so it
cannot guess "raw" for a file it does not recognise and hand over garbage as a disk. A file
without a known container format is a raw disk only if it looks like one (an MBR or GPT, or a
bare filesystem's superblock); a text file, an archive, an ISO or a file whose size is not a
whole number of sectors is refused. Differencing disks (a qcow2 with a backing file, a
differencing VHD, a VMDK with a parent) are refused too: they are only half a disk.

Sizes come from qemu-img, except for VHDs: qemu sizes some VHDs by their CHS geometry (a few
KiB short), Azure and Hyper-V by the footer's current size, so for VHDs qemu is told to use the
current size.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from image_factory.disks import SECTOR, DiskError, run
from image_factory.disks.filesystem import file_reader, probe
from image_factory.disks.vhd import COOKIE, DIFFERENCING, FIXED, FOOTER_SIZE, NO_DATA_OFFSET, parse_footer

QEMU_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhdx": "vhdx", "vhd-fixed": "vpc",
                "vhd-dynamic": "vpc"}
_HEAD = 68 * 1024  # the last magic looked for is btrfs's, at 64 KiB + 64
_ARCHIVES = {b"\x1f\x8b": "gzip-compressed", b"\xfd7zXZ\x00": "xz-compressed", b"BZh": "bzip2-compressed",
             b"\x28\xb5\x2f\xfd": "zstd-compressed", b"PK\x03\x04": "a zip archive", b"7z\xbc\xaf\x27\x1c": "a 7-zip archive"}
_PARENT_CID = re.compile(r"^\s*parentCID\s*=\s*\"?([0-9a-fA-F]+)\"?", re.MULTILINE)


@dataclass(frozen=True)
class Detected:
    """A file's disk format (one of ``QEMU_FORMATS``), the ``-f`` qemu-img takes for it, and what showed it."""

    format: str
    evidence: str

    @property
    def qemu_format(self) -> str:
        return QEMU_FORMATS[self.format]

    @property
    def data_at_zero(self) -> bool:
        """The disk's bytes are the file's bytes from offset 0 (readable in place, no conversion)."""
        return self.format in ("raw", "vhd-fixed")


def _refuse(path: str | os.PathLike[str], rule: str) -> DiskError:
    return DiskError(path, [("format", rule)])


def _vmdk_parent(descriptor: str) -> bool:
    m = _PARENT_CID.search(descriptor)
    return bool(m and m.group(1).lower() != "ffffffff") or "parentFileNameHint" in descriptor


def _footer_like(tail: bytes) -> bool:
    """A last sector shaped like a fixed VHD footer even though its cookie is wrong."""
    data_offset, = struct.unpack_from(">Q", tail, 16)
    disk_type, = struct.unpack_from(">I", tail, 60)
    return data_offset == NO_DATA_OFFSET and disk_type == FIXED


def detect_format(path: str | os.PathLike[str]) -> Detected:
    """The format of the disk file at ``path``; DiskError (rule ``format``) when it is not a disk image we take."""
    size = os.path.getsize(path)
    if size == 0:
        raise _refuse(path, "not a disk image: the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
        fh.seek(max(size - FOOTER_SIZE, 0))
        tail = fh.read(FOOTER_SIZE)

    if head[:4] == b"QFI\xfb":
        backing, = struct.unpack_from(">Q", head, 8)
        if backing:
            raise _refuse(path, "a differencing disk is refused: this qcow2 has a backing file (its parent); "
                                "convert it with its parent into a standalone disk first")
        return Detected("qcow2", "qcow2 magic 'QFI\\xfb' at offset 0")
    if head[:4] in (b"KDMV", b"COWD"):
        if head[:4] == b"KDMV":
            offset, length = struct.unpack_from("<QQ", head, 28)
            with open(path, "rb") as fh:
                fh.seek(offset * SECTOR)
                descriptor = fh.read(min(length * SECTOR, 1 << 20)).decode("ascii", "replace")
            if _vmdk_parent(descriptor):
                raise _refuse(path, "a differencing disk is refused: this VMDK names a parent disk (parentCID); "
                                    "consolidate its snapshots first")
        return Detected("vmdk", "VMDK sparse extent magic 'KDMV' at offset 0")
    if head[:21] == b"# Disk DescriptorFile":
        if _vmdk_parent(head[:65536].decode("ascii", "replace")):
            raise _refuse(path, "a differencing disk is refused: this VMDK descriptor names a parent disk "
                                "(parentCID); consolidate its snapshots first")
        return Detected("vmdk", "VMDK descriptor text ('# Disk DescriptorFile'); its extent files sit beside it")
    if head[:8] == b"vhdxfile":
        return Detected("vhdx", "VHDX signature 'vhdxfile' at offset 0")
    if head[:8] == COOKIE and len(head) >= 2 * SECTOR:
        copy = parse_footer(head[:FOOTER_SIZE])
        if copy.disk_type == DIFFERENCING:
            raise _refuse(path, "a differencing disk is refused: this VHD's disk type is Differencing (it needs "
                                "its parent); merge it into its parent first")
        if head[512:520] != b"cxsparse":
            raise _refuse(path, "a VHD footer copy at offset 0 promises a dynamic VHD but no 'cxsparse' header "
                                "follows it at offset 512: the file is damaged")
        return Detected("vhd-dynamic", "dynamic VHD: footer copy at offset 0 and 'cxsparse' header at 512")
    if len(tail) == FOOTER_SIZE and tail[:8] == COOKIE:
        return Detected("vhd-fixed", "VHD footer cookie 'conectix' in the last 512 bytes")
    if len(tail) == FOOTER_SIZE and _footer_like(tail):
        return Detected("vhd-fixed", "the last 512 bytes are shaped like a fixed VHD footer (but lack its cookie)")
    if Path(path).suffix.lower() == ".vhd":
        return Detected("vhd-fixed", "the file is named .vhd but has no VHD footer at its end")

    if head[0x8001:0x8006] == b"CD001":
        raise _refuse(path, "not a disk image: an ISO 9660 (CD/DVD) image; install from it into a VM and import "
                            "that VM's disk")
    if head[257:262] == b"ustar":
        raise _refuse(path, "not a disk image: a tar archive (an OVA is one: extract its disk file first)")
    for magic, what in _ARCHIVES.items():
        if head.startswith(magic):
            raise _refuse(path, f"not a disk image: {what} (decompress it first)")
    if _is_text(head):
        raise _refuse(path, "not a disk image: a text file")
    if size % SECTOR:
        raise _refuse(path, f"not a disk image: a raw disk is a whole number of {SECTOR}-byte sectors, the file has "
                            f"{size} bytes ({size % SECTOR} too many or {SECTOR - size % SECTOR} too few)")
    if head[510:512] == b"\x55\xaa" and head[512:520] == b"EFI PART":
        return Detected("raw", "raw disk: a protective MBR and a GPT header ('EFI PART') at offset 512")
    if head[510:512] == b"\x55\xaa":
        found = probe(file_reader(path))
        if found:
            return Detected("raw", f"raw disk: a bare {found} filesystem")
        return Detected("raw", "raw disk: an MBR (boot signature 0x55AA at offset 510)")
    found = probe(file_reader(path))
    if found and found != "swap":
        return Detected("raw", f"raw disk: a bare {found} filesystem (superblock at its start)")
    if not head.strip(b"\0"):
        raise _refuse(path, f"not a disk image: its first {len(head) // 1024} KiB are zeros (no partition table "
                            "or filesystem)")
    raise _refuse(path, "not a disk image: no known disk format (qcow2, VMDK, VHD, VHDX), no MBR or GPT and no "
                        "filesystem superblock at its start")


def _is_text(head: bytes) -> bool:
    sample = head[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def qemu_source(path: str | os.PathLike[str], detected: Detected) -> list[str]:
    """qemu-img arguments naming ``path`` with its format set (VHDs sized by their footer's current size)."""
    if detected.qemu_format == "vpc":
        name = os.fspath(path).replace(",", ",,")
        return ["--image-opts", f"driver=vpc,force_size_calc=current_size,file.driver=file,file.filename={name}"]
    return ["-f", detected.qemu_format, os.fspath(path)]


def qemu_info(path: str | os.PathLike[str], detected: Detected) -> dict[str, object]:
    """``qemu-img info --output=json`` with the format set; DiskError when qemu-img cannot open the file as that."""
    try:
        out = run("qemu-img", "info", "--output=json", *qemu_source(path, detected)).stdout
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or "").strip().splitlines()[-1:] or ["(no message)"]
        raise _refuse(path, f"qemu-img cannot open it as {detected.format} ({detected.evidence}): {why[0]}") from exc
    info: dict[str, object] = json.loads(out)
    if info.get("backing-filename"):
        raise _refuse(path, f"a differencing disk is refused: it has a parent ({info['backing-filename']}); make it "
                            "a standalone disk first")
    return info


def virtual_size(path: str | os.PathLike[str], detected: Detected | None = None) -> int:
    """The size of the disk the file holds, in bytes (what a VM would see)."""
    detected = detected or detect_format(path)
    size = qemu_info(path, detected).get("virtual-size")
    if not isinstance(size, int) or size <= 0:
        raise _refuse(path, f"qemu-img reports no usable virtual size for it ({size!r})")
    return size
