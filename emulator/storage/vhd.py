"""Fixed VHD files: read and check the 512-byte footer Azure relies on, or write one.

Azure only takes fixed VHDs (disk type 2) whose virtual size is a whole number of MiB, so the
blob is ``N MiB of data + 512-byte footer``. The footer layout is the Microsoft VHD
specification's (big-endian fields, one's-complement checksum over the footer without its
checksum field).
"""

from __future__ import annotations

import os
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

FOOTER_SIZE = 512
COOKIE = b"conectix"
MIB = 1024 * 1024
DISK_TYPES = {0: "None", 2: "Fixed", 3: "Dynamic", 4: "Differencing"}
_VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z, the VHD timestamp origin
_LAYOUT = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")  # the first 85 bytes of the footer


@dataclass(frozen=True)
class Footer:
    cookie: bytes
    features: int
    format_version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_version: int
    creator_os: bytes
    original_size: int
    current_size: int
    cylinders: int
    heads: int
    sectors: int
    disk_type: int
    checksum: int
    unique_id: bytes
    saved_state: int

    @property
    def disk_type_name(self) -> str:
        return DISK_TYPES.get(self.disk_type, f"Unknown ({self.disk_type})")


class VhdError(ValueError):
    """Why a file is not a VHD Azure accepts; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def checksum(footer: bytes) -> int:
    """One's complement of the byte sum of the footer, with the checksum field counted as zero."""
    total = sum(footer[:64]) + sum(footer[68:FOOTER_SIZE])
    return ~total & 0xFFFFFFFF


def parse_footer(raw: bytes) -> Footer:
    if len(raw) != FOOTER_SIZE:
        raise VhdError("cookie", f"a VHD footer is {FOOTER_SIZE} bytes, got {len(raw)}")
    f = _LAYOUT.unpack_from(raw)
    return Footer(*f)


def geometry(size: int) -> tuple[int, int, int]:
    """Cylinders, heads, sectors per track for ``size`` bytes (VHD specification, appendix)."""
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


def make_footer(size: int, *, disk_type: int = 2, unique_id: bytes | None = None, timestamp: float | None = None) -> bytes:
    """A valid footer for a disk of ``size`` bytes (fixed unless ``disk_type`` says otherwise)."""
    cyl, heads, spt = geometry(size)
    stamp = int((timestamp if timestamp is not None else time.time()) - _VHD_EPOCH) & 0xFFFFFFFF
    data_offset = 0xFFFFFFFFFFFFFFFF if disk_type == 2 else FOOTER_SIZE
    body = _LAYOUT.pack(
        COOKIE, 2, 0x00010000, data_offset, stamp, b"laz ", 0x00010000, b"Wi2k",
        size, size, cyl, heads, spt, disk_type, 0, unique_id or uuid.uuid4().bytes, 0,
    )
    raw = body + b"\0" * (FOOTER_SIZE - len(body))
    return raw[:64] + struct.pack(">I", checksum(raw)) + raw[68:]


def write_fixed(path: str | os.PathLike[str], size: int, data: bytes = b"") -> Path:
    """Write a sparse fixed VHD of ``size`` bytes (``data`` at its start): for tests, tools and demos."""
    p = Path(path)
    with open(p, "wb") as fh:
        fh.write(data[:size])
        fh.truncate(size)
        fh.seek(size)
        fh.write(make_footer(size))
    return p


def read_footer(path: str | os.PathLike[str]) -> tuple[Footer, int]:
    """The footer of a file and the file's size; VhdError when there is no footer to read."""
    size = os.path.getsize(path)
    if size < FOOTER_SIZE:
        raise VhdError("cookie", f"the file is {size} bytes, smaller than a VHD footer")
    with open(path, "rb") as fh:
        fh.seek(size - FOOTER_SIZE)
        raw = fh.read(FOOTER_SIZE)
    footer = parse_footer(raw)
    if footer.cookie != COOKIE:
        raise VhdError("cookie", f"the footer cookie is {footer.cookie!r}, not {COOKIE!r}")
    if footer.checksum != checksum(raw):
        raise VhdError("checksum", f"the footer checksum is {footer.checksum:#010x}, expected {checksum(raw):#010x}")
    return footer, size


def check_fixed(path: str | os.PathLike[str]) -> Footer:
    """The footer of a VHD Azure would accept as an image source, else VhdError saying why not."""
    footer, size = read_footer(path)
    if footer.disk_type != 2:
        raise VhdError("type", f"the disk type is {footer.disk_type_name}, only Fixed is supported")
    if footer.current_size != size - FOOTER_SIZE:
        raise VhdError(
            "size", f"the footer says the disk holds {footer.current_size} bytes but the file has "
            f"{size - FOOTER_SIZE} bytes before its footer",
        )
    if footer.current_size == 0 or footer.current_size % MIB:
        raise VhdError("alignment", f"the virtual size {footer.current_size} bytes is not a whole number of MiB")
    return footer
