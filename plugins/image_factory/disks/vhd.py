"""The fixed VHD footer: read it, say which of Azure's rules it breaks, or write a sound one.

Azure takes a VHD as an image source only when it is fixed (disk type 2, no block table, so the
data offset is all ones) and its virtual size is a whole number of MiB, the file being exactly
that data plus the 512-byte footer. The footer is the last 512 bytes: big-endian fields, and a
one's-complement checksum of its bytes with the checksum field counted as zero (Microsoft's
VHD specification). Every broken rule is reported, not only the first, so a user fixes the
file in one pass.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from image_factory.disks import MIB, DiskError

FOOTER_SIZE = 512
COOKIE = b"conectix"
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
NO_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF  # a fixed disk has no dynamic header to point at
TYPE_NAMES = {0: "None", FIXED: "Fixed", DYNAMIC: "Dynamic", DIFFERENCING: "Differencing"}
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z, where VHD timestamps start
# cookie, features, version, data offset, timestamp, creator app/version/OS, original and
# current size, geometry (cylinders, heads, sectors), disk type, checksum, unique id, saved state
_LAYOUT = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")
_CHECKSUM_AT = 64


@dataclass(frozen=True)
class Footer:
    cookie: bytes
    data_offset: int
    creator_app: bytes
    original_size: int
    current_size: int
    disk_type: int
    checksum: int
    computed_checksum: int
    unique_id: uuid.UUID

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.disk_type, f"unknown ({self.disk_type})")


def checksum(raw: bytes) -> int:
    """One's complement of the sum of the footer's bytes, the checksum field counted as zero."""
    return ~(sum(raw[:_CHECKSUM_AT]) + sum(raw[_CHECKSUM_AT + 4:FOOTER_SIZE])) & 0xFFFFFFFF


def parse_footer(raw: bytes) -> Footer:
    """The fields of a 512-byte footer, whatever they hold (``footer_problems`` judges them)."""
    if len(raw) != FOOTER_SIZE:
        raise ValueError(f"a VHD footer is {FOOTER_SIZE} bytes, got {len(raw)}")
    (cookie, _features, _version, data_offset, _stamp, creator_app, _creator_version, _creator_os, original,
     current, _cyl, _heads, _spt, disk_type, stored, unique_id, _saved) = _LAYOUT.unpack_from(raw)
    return Footer(cookie, data_offset, creator_app, original, current, disk_type, stored, checksum(raw),
                  uuid.UUID(bytes=unique_id))


def read_footer(path: str | os.PathLike[str]) -> tuple[Footer | None, int]:
    """The footer at the end of the file (None when the file is shorter than one) and the file's size."""
    size = os.path.getsize(path)
    if size < FOOTER_SIZE:
        return None, size
    with open(path, "rb") as fh:
        fh.seek(size - FOOTER_SIZE)
        return parse_footer(fh.read(FOOTER_SIZE)), size


def footer_problems(footer: Footer | None, file_size: int) -> list[tuple[str, str]]:
    """Each rule of a fixed, whole-MiB VHD that the footer (of a file of ``file_size`` bytes) breaks."""
    if footer is None:
        return [("vhd.footer", f"a VHD ends with a {FOOTER_SIZE}-byte footer; the file has only {file_size} bytes")]
    problems: list[tuple[str, str]] = []
    if footer.cookie != COOKIE:
        problems.append(("vhd.cookie", f"the footer (last {FOOTER_SIZE} bytes) must start with {COOKIE.decode()!r}, "
                                       f"found {footer.cookie!r}"))
    if footer.checksum != footer.computed_checksum:
        problems.append(("vhd.checksum", f"the footer checksum must be the one's complement of its byte sum "
                                         f"({footer.computed_checksum:#010x}), found {footer.checksum:#010x}: "
                                         "the footer is corrupt"))
    if footer.disk_type != FIXED:
        problems.append(("vhd.disk_type", f"the disk type must be Fixed ({FIXED}), found {footer.type_name}"))
    if footer.data_offset != NO_DATA_OFFSET:
        problems.append(("vhd.data_offset", f"a fixed VHD's data offset must be {NO_DATA_OFFSET:#x} (no dynamic "
                                            f"header), found {footer.data_offset:#x}"))
    data = file_size - FOOTER_SIZE
    if footer.current_size != data:
        problems.append(("vhd.current_size", f"the footer's current size ({footer.current_size} bytes) must equal "
                                             f"the file size minus the footer ({data} bytes)"))
    if footer.current_size <= 0 or footer.current_size % MIB:
        whole = -(-max(footer.current_size, 1) // MIB)
        problems.append(("vhd.whole_mib", f"the virtual size must be a whole number of MiB, found "
                                          f"{footer.current_size} bytes (the next whole size is {whole} MiB = "
                                          f"{whole * MIB} bytes)"))
    return problems


def check_fixed(path: str | os.PathLike[str]) -> Footer:
    """The footer of a fixed VHD Azure takes, else a DiskError listing every rule the file breaks."""
    footer, size = read_footer(path)
    problems = footer_problems(footer, size)
    if problems or footer is None:
        raise DiskError(path, problems)
    return footer


def geometry(size: int) -> tuple[int, int, int]:
    """Cylinders, heads, sectors per track for ``size`` bytes (the VHD specification's algorithm)."""
    total = min(size // 512, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def make_footer(size: int, *, disk_type: int = FIXED, unique_id: uuid.UUID | None = None,
                timestamp: float | None = None) -> bytes:
    """A footer with a correct checksum for a disk of ``size`` bytes (fixed unless ``disk_type`` says otherwise)."""
    cyl, heads, spt = geometry(size)
    stamp = int((time.time() if timestamp is None else timestamp) - VHD_EPOCH) & 0xFFFFFFFF
    data_offset = NO_DATA_OFFSET if disk_type == FIXED else FOOTER_SIZE
    body = _LAYOUT.pack(COOKIE, 2, 0x00010000, data_offset, stamp, b"imgf", 0x00010000, b"Wi2k", size, size,
                        cyl, heads, spt, disk_type, 0, (unique_id or uuid.uuid4()).bytes, 0)
    raw = body + bytes(FOOTER_SIZE - len(body))
    return raw[:_CHECKSUM_AT] + struct.pack(">I", checksum(raw)) + raw[_CHECKSUM_AT + 4:]


def append_footer(path: str | os.PathLike[str]) -> Path:
    """Turn a raw disk file into a fixed VHD in place by appending a footer (its size must be whole MiB)."""
    size = os.path.getsize(path)
    if size <= 0 or size % MIB:
        raise DiskError(path, [("vhd.whole_mib", f"a fixed VHD's data must be a whole number of MiB, the file "
                                                 f"has {size} bytes")])
    with open(path, "ab") as fh:
        fh.write(make_footer(size))
    return Path(path)
