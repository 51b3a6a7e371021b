"""MBR and GPT partition tables, and the Hyper-V generation a disk can boot as.

Generation 1 VMs boot with a BIOS, which starts the code in the MBR: an MBR disk, or a GPT disk
whose boot loader keeps its second stage in a BIOS boot partition (GRUB's layout). Generation 2
VMs boot with UEFI, which needs a GPT disk with an EFI system partition to load the boot loader
from. A GPT disk with both (cloud images often ship so) boots as either. Sectors are 512 bytes:
the only size a VHD has.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass

from image_factory.disks import SECTOR
from image_factory.disks.filesystem import Reader

ESP = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
BIOS_BOOT = uuid.UUID("21686148-6449-6E6F-744E-656564454649")
GPT_TYPES = {
    ESP: "EFI system partition",
    BIOS_BOOT: "BIOS boot partition",
    uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4"): "Linux filesystem",
    uuid.UUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"): "Linux root (x86-64)",
    uuid.UUID("BC13C2FF-59E6-4262-A352-B275FD6F7172"): "Linux extended boot (/boot)",
    uuid.UUID("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"): "Linux swap",
    uuid.UUID("E6D6D379-F507-44C2-A23C-238F2A3DF928"): "Linux LVM",
    uuid.UUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"): "Microsoft basic data",
    uuid.UUID("E3C9E316-0B5C-4DB8-817D-F92DF00215AE"): "Microsoft reserved",
    uuid.UUID("DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"): "Windows recovery",
}
MBR_TYPES = {0x07: "NTFS/exFAT", 0x0B: "FAT32", 0x0C: "FAT32 (LBA)", 0x82: "Linux swap", 0x83: "Linux",
             0x8E: "Linux LVM", 0xEE: "GPT protective", 0xEF: "EFI system partition (MBR)"}
_EXTENDED = {0x05, 0x0F, 0x85}
_GPT_SIGNATURE = b"EFI PART"
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")


class PartitionTableError(ValueError):
    """A partition table that is there but cannot be trusted (bad checksum, entries outside the disk)."""


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes from the start of the disk
    size: int  # bytes
    type: str  # "0x83" for MBR, the type GUID for GPT
    type_name: str
    bootable: bool = False  # the MBR active flag
    name: str = ""  # the GPT partition name

    @property
    def is_esp(self) -> bool:
        return self.type.upper() == str(ESP).upper() or self.type == "0xef"

    @property
    def is_bios_boot(self) -> bool:
        return self.type.upper() == str(BIOS_BOOT).upper()


@dataclass(frozen=True)
class PartitionTable:
    scheme: str  # "mbr", "gpt" or "none" (a bare filesystem, or nothing known)
    partitions: tuple[Partition, ...] = ()
    disk_id: str = ""


@dataclass(frozen=True)
class Boot:
    """The Hyper-V generations a disk can boot as (empty: neither), and why, in words."""

    generations: frozenset[str]
    reason: str

    @property
    def label(self) -> str:
        return " or ".join(sorted(self.generations)) or "neither V1 nor V2"

    def __str__(self) -> str:
        return f"{self.reason} (it boots as {self.label})"


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int, int]]:
    """(status, type, first LBA, sectors) of the four primary slots that are in use."""
    out = []
    for i in range(4):
        status, kind, lba, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * i)
        if kind and count:
            out.append((status, kind, lba, count))
    return out


def _read_mbr(read: Reader, sector0: bytes) -> PartitionTable:
    parts: list[Partition] = []
    number = 0
    for status, kind, lba, count in _mbr_entries(sector0):
        number += 1
        parts.append(Partition(number, lba * SECTOR, count * SECTOR, f"{kind:#04x}",
                               MBR_TYPES.get(kind, "extended" if kind in _EXTENDED else "unknown"), status == 0x80))
        if kind in _EXTENDED:
            parts.extend(_logical(read, lba))
    disk_id = f"{struct.unpack_from('<I', sector0, 440)[0]:08x}"
    return PartitionTable("mbr", tuple(parts), disk_id)


def _logical(read: Reader, extended_lba: int) -> list[Partition]:
    """Logical partitions: a chain of extended boot records, each pointing at the next."""
    out: list[Partition] = []
    ebr = extended_lba
    seen: set[int] = set()
    while ebr not in seen and len(out) < 128:
        seen.add(ebr)
        sector = read(ebr * SECTOR, SECTOR)
        if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
            break
        entries = _mbr_entries(sector)
        if not entries:
            break
        status, kind, lba, count = entries[0]
        out.append(Partition(5 + len(out), (ebr + lba) * SECTOR, count * SECTOR, f"{kind:#04x}",
                             MBR_TYPES.get(kind, "unknown"), status == 0x80))
        if len(entries) < 2 or entries[1][1] not in _EXTENDED:
            break
        ebr = extended_lba + entries[1][2]
    return out


def _read_gpt(read: Reader, disk_size: int) -> PartitionTable:
    header = read(SECTOR, SECTOR)
    (signature, _revision, header_size, header_crc, _reserved, _current, _backup, _first, _last, disk_guid,
     entries_lba, count, entry_size, entries_crc) = _GPT_HEADER.unpack_from(header)
    if signature != _GPT_SIGNATURE:
        raise PartitionTableError("the protective MBR announces a GPT but sector 1 has no 'EFI PART' header")
    if not 92 <= header_size <= SECTOR:
        raise PartitionTableError(f"the GPT header size {header_size} is outside 92..{SECTOR}")
    zeroed = header[:16] + b"\0\0\0\0" + header[20:header_size]
    if zlib.crc32(zeroed) != header_crc:
        raise PartitionTableError("the GPT header checksum (CRC32) does not match: the header is corrupt")
    if entry_size < 128 or count > 4096 or (entries_lba * SECTOR + count * entry_size) > max(disk_size, 0):
        raise PartitionTableError(f"the GPT entry array ({count} entries of {entry_size} bytes at LBA "
                                  f"{entries_lba}) does not fit the disk")
    table = read(entries_lba * SECTOR, count * entry_size)
    if zlib.crc32(table) != entries_crc:
        raise PartitionTableError("the GPT partition entries checksum (CRC32) does not match: the table is corrupt")
    parts = []
    for i in range(count):
        entry = table[i * entry_size:(i + 1) * entry_size]
        kind = uuid.UUID(bytes_le=entry[:16])
        if kind.int == 0:
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", "replace").rstrip("\0")
        parts.append(Partition(i + 1, first * SECTOR, (last - first + 1) * SECTOR, str(kind).upper(),
                               GPT_TYPES.get(kind, "unknown"), name=name))
    return PartitionTable("gpt", tuple(parts), str(uuid.UUID(bytes_le=disk_guid)).upper())


def read_partition_table(read: Reader, disk_size: int) -> PartitionTable:
    """The disk's MBR or GPT (a GPT is found through its protective MBR); scheme "none" when there is neither."""
    sector0 = read(0, SECTOR)
    if len(sector0) < SECTOR or sector0[510:512] != b"\x55\xaa":
        return PartitionTable("none")
    entries = _mbr_entries(sector0)
    if any(kind == 0xEE for _, kind, _, _ in entries):
        return _read_gpt(read, disk_size)
    if not entries or any(lba == 0 or status not in (0, 0x80) for status, _, lba, _ in entries):
        return PartitionTable("none")  # a boot sector (a bare FAT or NTFS volume), not a partition table
    return _read_mbr(read, sector0)


def boot_generations(table: PartitionTable) -> Boot:
    """How the disk can boot on Azure: V2 needs GPT + EFI system partition; V1 needs an MBR or a BIOS boot partition."""
    def numbers(parts: list[Partition]) -> str:
        return ", ".join(str(p.number) for p in parts)

    if table.scheme == "mbr":
        return Boot(frozenset({"V1"}), "an MBR partition table and no EFI system partition")
    if table.scheme == "gpt":
        esp = [p for p in table.partitions if p.is_esp]
        bios = [p for p in table.partitions if p.is_bios_boot]
        if esp and bios:
            return Boot(frozenset({"V1", "V2"}), f"a GPT partition table with an EFI system partition (partition "
                                                 f"{numbers(esp)}) and a BIOS boot partition (partition "
                                                 f"{numbers(bios)})")
        if esp:
            return Boot(frozenset({"V2"}), f"a GPT partition table with an EFI system partition (partition "
                                           f"{numbers(esp)}) and no BIOS boot partition")
        if bios:
            return Boot(frozenset({"V1"}), f"a GPT partition table with a BIOS boot partition (partition "
                                           f"{numbers(bios)}) and no EFI system partition")
        return Boot(frozenset(), "a GPT partition table with neither an EFI system partition (UEFI, V2) nor a BIOS "
                                 "boot partition (BIOS on GPT, V1)")
    return Boot(frozenset(), "no partition table (a bare filesystem has no place for a boot loader)")
