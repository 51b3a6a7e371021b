"""Turn a disk file into the fixed, whole-MiB VHD Azure takes, once per input.

A file that already is a sound fixed VHD is used as it is. Anything else is converted with
``qemu-img``: a fixed VPC target of the virtual size rounded up to a whole MiB is created first
(``subformat=fixed,force_size=on``, so the footer holds that exact size), then the data is
copied into it (``convert -n --target-is-zero``: zero blocks are skipped, the output stays
sparse). Rounding up only appends zeros, which no partition reaches; the result says when it
happened. A file that claims to be a fixed VHD (a footer, or the name) but breaks a rule is
refused with the rule, never silently rewritten: its footer may be lying about its content.

The output is written under a temporary name and renamed, and its name carries a digest of the
input, so a rerun (an Airflow retry) finds the finished output of the same input and reuses it,
and a half-written one is never mistaken for it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image_factory.disks import MIB, DiskError, run
from image_factory.disks.formats import Detected, detect_format, qemu_source, virtual_size
from image_factory.disks.vhd import FOOTER_SIZE, check_fixed

_BLOCK = MIB
_EXTENT_LINE = re.compile(r'^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]+)"', re.MULTILINE)


@dataclass(frozen=True)
class ConversionPlan:
    source: Path
    detected: Detected
    source_size: int  # the input's virtual size, bytes
    target_size: int  # the fixed VHD's virtual size: source_size rounded up to a whole MiB

    @property
    def convert(self) -> bool:
        return self.detected.format != "vhd-fixed"

    @property
    def rounded_up(self) -> bool:
        return self.target_size != self.source_size


@dataclass(frozen=True)
class Conversion:
    """What ``convert_to_fixed_vhd`` produced: ``output`` is the fixed VHD to upload."""

    source: Path
    source_format: str
    converted: bool  # False: the input already was a sound fixed VHD and ``output`` is the input itself
    output: Path
    virtual_size: int  # bytes, a whole number of MiB; the file is this + the 512-byte footer
    source_virtual_size: int
    bytes_allocated: int  # the output's blocks on disk (much less than its size: it is sparse)
    reused: bool  # a finished output of the same input was found and kept
    note: str

    @property
    def rounded_up(self) -> bool:
        return self.virtual_size != self.source_virtual_size

    def as_dict(self) -> dict[str, object]:
        """Primitives for XCom (``path`` is the VHD to upload)."""
        return {"source": str(self.source), "source_format": self.source_format, "converted": self.converted,
                "path": str(self.output), "virtual_size": self.virtual_size,
                "source_virtual_size": self.source_virtual_size, "rounded_up": self.rounded_up,
                "bytes_allocated": self.bytes_allocated, "reused": self.reused, "note": self.note}


def plan_conversion(path: str | os.PathLike[str]) -> ConversionPlan:
    """What converting ``path`` involves; DiskError for a file that is not a disk or a fixed VHD breaking a rule."""
    detected = detect_format(path)
    if detected.format == "vhd-fixed":
        footer = check_fixed(path)  # raises with every broken rule
        return ConversionPlan(Path(path), detected, footer.current_size, footer.current_size)
    size = virtual_size(path, detected)
    return ConversionPlan(Path(path), detected, size, -(-size // MIB) * MIB)


def _extent_files(path: Path) -> list[Path]:
    """The extent files a VMDK descriptor names (their data is the disk's, so it is part of the input)."""
    with open(path, "rb") as fh:
        head = fh.read(21)
        if head != b"# Disk DescriptorFile":
            return []
        text = fh.read(1 << 20).decode("ascii", "replace")
    return [path.parent / name for name in _EXTENT_LINE.findall(text)]


def _hash_data(h: Any, path: Path) -> None:
    """Feed the file's size and each of its non-zero blocks (index and bytes) to ``h``.

    Only the data extents are read (holes are zeros), but what is hashed depends on the content
    alone, not on how the filesystem happens to lay it out.
    """
    size = path.stat().st_size
    h.update(f"{size}\n".encode())
    done = -1  # the last block hashed or skipped
    with open(path, "rb") as fh:
        fd, pos = fh.fileno(), 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
                end = os.lseek(fd, start, os.SEEK_HOLE)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                start, end = pos, size  # no hole detection here: read everything
            for block in range(max(start // _BLOCK, done + 1), -(-end // _BLOCK)):
                fh.seek(block * _BLOCK)
                data = fh.read(_BLOCK)
                if data.strip(b"\0"):
                    h.update(f"@{block}\n".encode())
                    h.update(data)
                done = block
            pos = max(end, (done + 1) * _BLOCK)


def input_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of the input's size and non-zero data (a VMDK descriptor's extent files included): equal content,
    equal digest, whether its zeros are holes or written; only the data extents are read."""
    h = hashlib.sha256()
    for p in [Path(path), *_extent_files(Path(path))]:
        _hash_data(h, p)
    return h.hexdigest()


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def _output_sound(path: Path, size: int) -> bool:
    try:
        return check_fixed(path).current_size == size
    except (DiskError, OSError):
        return False


def _compare(plan: ConversionPlan, output: Path) -> None:
    src = qemu_source(plan.source, plan.detected)
    out = os.fspath(output).replace(",", ",,")
    if src[0] == "--image-opts":
        cmd = ["qemu-img", "compare", "--image-opts", src[1], f"driver=vpc,file.driver=file,file.filename={out}"]
    else:
        cmd = ["qemu-img", "compare", *src[:2], "-F", "vpc", src[2], os.fspath(output)]
    try:
        run(*cmd)
    except subprocess.CalledProcessError as exc:
        raise DiskError(plan.source, [("convert", f"the converted VHD does not hold the same data as the input: "
                                                  f"{(exc.stdout + exc.stderr).strip()[-500:]}")]) from exc


def convert_to_fixed_vhd(path: str | os.PathLike[str], work_dir: str | os.PathLike[str], *,
                         digest: str | None = None, verify: bool = True) -> Conversion:
    """The fixed whole-MiB VHD of the disk at ``path``, converted into ``work_dir`` unless it already is one.

    ``digest`` is the input's ``input_digest`` when the caller has it already. ``verify`` compares
    the output's data with the input's (``qemu-img compare``, which skips unallocated blocks).
    """
    plan = plan_conversion(path)
    source = Path(path)
    if not plan.convert:
        return Conversion(source, plan.detected.format, False, source, plan.target_size, plan.source_size,
                          _allocated(source), False, "already a fixed VHD of a whole number of MiB: used as it is")
    note = (f"converted from {plan.detected.format} to a fixed VHD"
            + (f"; the virtual size {plan.source_size} bytes was rounded up to {plan.target_size // MIB} MiB "
               f"({plan.target_size} bytes)" if plan.rounded_up else ""))
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    output = work / f"{source.stem}-{(digest or input_digest(source))[:16]}.vhd"
    if output.exists() and _output_sound(output, plan.target_size):
        return Conversion(source, plan.detected.format, True, output, plan.target_size, plan.source_size,
                          _allocated(output), True, note + " (reused the output of an earlier run)")
    for stale in work.glob(f".{output.name}.*.partial"):  # left by a run that died: nothing else writes this name
        stale.unlink(missing_ok=True)
    partial = work / f".{output.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        run("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", str(partial),
            str(plan.target_size))
        run("qemu-img", "convert", "-n", "--target-is-zero", *qemu_source(source, plan.detected), "-O", "vpc",
            str(partial))
        footer = check_fixed(partial)
        if footer.current_size != plan.target_size or partial.stat().st_size != plan.target_size + FOOTER_SIZE:
            raise DiskError(source, [("convert", f"qemu-img wrote a VHD of {footer.current_size} bytes, expected "
                                                 f"{plan.target_size}")])
        if verify:
            _compare(plan, partial)
        os.replace(partial, output)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{' '.join(exc.cmd[:2])} failed for {source.name}: "
                           f"{(exc.stderr or '').strip()[-1000:]}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Conversion(source, plan.detected.format, True, output, plan.target_size, plan.source_size,
                      _allocated(output), False, note)
