"""What a disk file is and what it says about itself, checked against the image definition it is imported as.

``inspect_disk`` reads the format, size, partition table and boot generation, finds the Linux
root filesystem (ext2/3/4, read with debugfs) and gathers the evidence of the OS state: a
generalized Linux disk (``waagent -deprovision+user``, ``cloud-init clean``, machine-id
truncated) has an empty ``/etc/machine-id``, no SSH host keys, no user accounts of people, no
waagent provisioning markers and no cloud-init instance; a specialized one (a copy of a running
machine) has them. Azure provisions a VM from a generalized image afresh and boots a specialized
one as it is, so declaring the wrong state gives VMs that clash (shared machine-id and host keys)
or never finish provisioning. Filesystems debugfs cannot read (NTFS for Windows, XFS, LVM) leave
the OS state "unknown": the report says so and no contradiction is claimed.

Formats whose data is not stored from byte 0 (qcow2, VMDK, dynamic VHD, VHDX) are read from a
sparse raw copy in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from image_factory.disks import DiskError, run
from image_factory.disks.filesystem import ExtFilesystem, FilesystemError, Reader, file_reader, probe
from image_factory.disks.formats import Detected, detect_format, qemu_source, virtual_size
from image_factory.disks.partitions import (
    Boot,
    PartitionTable,
    PartitionTableError,
    boot_generations,
    read_partition_table,
)
from image_factory.disks.vhd import FOOTER_SIZE, footer_problems, read_footer

FIRST_PERSON_UID = 1000  # Debian's and most distributions' first regular user
NOBODY_UID = 65534
WAAGENT_MARKERS = frozenset({"provisioned", "ovf-env.xml", "Certificates.pem", "Certificates.p7m", "SharedConfig.xml",
                             "HostingEnvironmentConfig.xml"})
LINUX_PARTITION_TYPES = frozenset({"0x83", "0x8e", "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                                   "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "E6D6D379-F507-44C2-A23C-238F2A3DF928"})
_LINUX_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs"})


@dataclass(frozen=True)
class Volume:
    """A filesystem (or an unrecognised partition) on the disk; ``partition`` 0 is a bare-filesystem disk."""

    partition: int
    offset: int
    size: int
    filesystem: str | None
    partition_type: str = ""


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    home: str
    home_exists: bool


@dataclass(frozen=True)
class OsStateEvidence:
    """What the root filesystem holds that a generalized image must not."""

    machine_id: str  # "set", "empty" (also systemd's "uninitialized") or "missing"
    ssh_host_keys: tuple[str, ...]
    users: tuple[User, ...]  # uid >= 1000, except nobody
    waagent_markers: tuple[str, ...]  # files in /var/lib/waagent left by a provisioning
    cloud_init_instances: tuple[str, ...]  # instance ids under /var/lib/cloud/instances

    def signs(self) -> list[str]:
        """Each trace of a machine that ran (empty for a generalized disk), worded for a person."""
        out = []
        if self.machine_id == "set":
            out.append("/etc/machine-id is set")
        if self.ssh_host_keys:
            out.append(f"SSH host keys present ({', '.join(self.ssh_host_keys)})")
        for u in self.users:
            out.append(f"user {u.name!r} has a home ({u.home})" if u.home_exists
                       else f"user {u.name!r} (uid {u.uid}) exists")
        if self.waagent_markers:
            out.append(f"waagent provisioning state in /var/lib/waagent ({', '.join(self.waagent_markers)})")
        if self.cloud_init_instances:
            out.append(f"cloud-init instance state in /var/lib/cloud ({', '.join(self.cloud_init_instances)})")
        return out

    @property
    def verdict(self) -> str:
        return "specialized" if self.signs() else "generalized"


@dataclass(frozen=True)
class DiskReport:
    path: str
    format: str
    format_evidence: str
    virtual_size: int
    partition_table: PartitionTable
    boot: Boot
    volumes: tuple[Volume, ...]
    os_family: str | None  # "Linux", "Windows" or None when nothing tells
    root: Volume | None  # the Linux root filesystem read for the evidence
    os_release: dict[str, str] = field(default_factory=dict)
    os_state: str = "unknown"  # "generalized", "specialized" or "unknown"
    evidence: OsStateEvidence | None = None
    vhd_problems: tuple[tuple[str, str], ...] = ()  # a claimed fixed VHD's broken footer rules
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The facts as primitives (for XCom and lineage records)."""
        return {"format": self.format, "virtual_size": self.virtual_size,
                "partition_table": self.partition_table.scheme, "generations": sorted(self.boot.generations),
                "boot": str(self.boot), "os_family": self.os_family,
                "root_partition": self.root.partition if self.root else None,
                "os_release": {k: v for k, v in self.os_release.items() if k in ("ID", "VERSION_ID", "PRETTY_NAME")},
                "os_state": self.os_state, "os_state_signs": self.evidence.signs() if self.evidence else [],
                "vhd_problems": [f"{what}: {rule}" for what, rule in self.vhd_problems], "notes": list(self.notes)}

    def summary(self) -> str:
        """The report in a few lines, for a task log."""
        lines = [f"{Path(self.path).name}: {self.format} ({self.format_evidence}), virtual size {self.virtual_size} "
                 f"bytes", f"boot: {self.boot}"]
        for v in self.volumes:
            lines.append(f"partition {v.partition or '(whole disk)'}: {v.filesystem or 'no known filesystem'} at byte "
                         f"{v.offset}, {v.size} bytes")
        if self.os_release:
            lines.append(f"os-release: {self.os_release.get('PRETTY_NAME') or self.os_release.get('ID', '?')}")
        state = self.os_state
        if self.evidence is not None:
            state += ": " + ("; ".join(self.evidence.signs()) or "no machine-id, host keys, users or provisioning "
                                                                   "state")
        lines.append(f"os state: {state}")
        lines.extend(f"vhd: {what}: {rule}" for what, rule in self.vhd_problems)
        lines.extend(self.notes)
        return "\n".join(lines)


def parse_os_release(text: str) -> dict[str, str]:
    """os-release's shell-like ``KEY=value`` lines (quotes removed)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key] = value
    return out


def gather_evidence(fs: ExtFilesystem) -> OsStateEvidence:
    """The OS-state evidence in the Linux root filesystem ``fs``."""
    machine_id = fs.read_text("/etc/machine-id")
    state = ("missing" if machine_id is None
             else "empty" if machine_id.strip() in ("", "uninitialized") else "set")
    keys = tuple(sorted(e.name for e in fs.listdir("/etc/ssh") or []
                        if e.name.startswith("ssh_host_") and e.name.endswith("_key")))
    users = []
    for line in (fs.read_text("/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit():
            continue
        uid = int(fields[2])
        if uid >= FIRST_PERSON_UID and uid != NOBODY_UID:
            home = fields[5]
            users.append(User(fields[0], uid, home, bool(home) and home != "/" and fs.is_dir(home)))
    waagent = tuple(sorted(e.name for e in fs.listdir("/var/lib/waagent") or []
                           if e.name in WAAGENT_MARKERS or e.name.startswith("GoalState")))
    instances = tuple(sorted(e.name for e in fs.listdir("/var/lib/cloud/instances") or []))
    if not instances and fs.exists("/var/lib/cloud/instance"):
        instances = ("instance",)
    return OsStateEvidence(state, keys, tuple(users), waagent, instances)


def _volumes(read: Reader, table: PartitionTable, size: int) -> list[Volume]:
    if table.scheme == "none":
        return [Volume(0, 0, size, probe(read, 0))]
    return [Volume(p.number, p.start, p.size, probe(read, p.start), p.type)
            for p in table.partitions if p.type_name != "extended" and p.size > 0]


def _read(path: Path, detected: Detected, report_path: str, vhd_problems: tuple[tuple[str, str], ...],
          size: int) -> DiskReport:
    read = file_reader(path)
    try:
        table = read_partition_table(read, size)
    except PartitionTableError as exc:
        raise DiskError(report_path, [("partition_table", str(exc))]) from exc
    boot = boot_generations(table)
    volumes = _volumes(read, table, size)
    notes: list[str] = []
    linux = [v for v in volumes if v.filesystem in _LINUX_FILESYSTEMS or v.partition_type in LINUX_PARTITION_TYPES]
    windows = [v for v in volumes if v.filesystem == "ntfs"]
    root: Volume | None = None
    os_release: dict[str, str] = {}
    evidence: OsStateEvidence | None = None
    for v in volumes:
        if v.filesystem not in ("ext2", "ext3", "ext4"):
            continue
        try:
            fs = ExtFilesystem(path, v.offset)
        except FilesystemError as exc:
            notes.append(f"partition {v.partition}: {exc}")
            continue
        if not fs.is_dir("/etc"):
            continue  # /boot or a data volume
        root = v
        os_release = parse_os_release(fs.read_text("/etc/os-release") or fs.read_text("/usr/lib/os-release") or "")
        evidence = gather_evidence(fs)
        break
    family = "Linux" if root or linux else "Windows" if windows else None
    if evidence is None:
        what = ", ".join(f"{v.filesystem or 'unknown'} (partition {v.partition})" for v in volumes) or "nothing"
        notes.append(f"os state unknown: no readable Linux root filesystem (ext2/3/4) on the disk (found: {what}); "
                     "the declared os_state is taken as is")
    return DiskReport(report_path, detected.format, detected.evidence, size, table, boot, tuple(volumes), family,
                      root, os_release, evidence.verdict if evidence else "unknown", evidence, vhd_problems,
                      tuple(notes))


def inspect_disk(path: str | os.PathLike[str], *, work_dir: str | os.PathLike[str] | None = None) -> DiskReport:
    """Everything the factory checks about the disk file at ``path``, read without changing it.

    ``work_dir`` holds the temporary raw copy of a qcow2/VMDK/dynamic VHD/VHDX (the system's
    temporary directory when None): it needs room for the disk's allocated data.
    """
    detected = detect_format(path)
    if detected.format == "vhd-fixed":
        footer, file_size = read_footer(path)
        problems = tuple(footer_problems(footer, file_size))
        return _read(Path(path), detected, str(path), problems, file_size - FOOTER_SIZE)
    size = virtual_size(path, detected)
    if detected.data_at_zero:
        return _read(Path(path), detected, str(path), (), size)
    with tempfile.TemporaryDirectory(prefix="inspect-", dir=work_dir) as tmp:
        raw = Path(tmp) / "disk.raw"
        try:
            run("qemu-img", "convert", *qemu_source(path, detected), "-O", "raw", str(raw))
        except subprocess.CalledProcessError as exc:
            raise DiskError(path, [("format", f"qemu-img cannot read it as {detected.format}: "
                                              f"{(exc.stderr or '').strip()[-500:]}")]) from exc
        return _read(raw, detected, str(path), (), size)


def check_against(report: DiskReport, *, os_type: str, os_state: str, hyper_v_generation: str) -> None:
    """Raise one DiskError listing every way the disk contradicts the definition (fields ``image.*``)."""
    problems: list[tuple[str, str]] = []
    if os_type == "Linux" and report.os_family == "Windows":
        problems.append(("image.os_type", "the definition says Linux but the disk holds NTFS and no Linux "
                                          "filesystem (a Windows disk)"))
    elif os_type == "Linux" and report.os_family is None:
        problems.append(("image.os_type", "the definition says Linux but the disk holds no Linux filesystem or "
                                          "partition"))
    elif os_type == "Windows" and report.root is not None:
        name = report.os_release.get("PRETTY_NAME") or report.os_release.get("ID") or "a Linux root filesystem"
        problems.append(("image.os_type", f"the definition says Windows but the disk holds {name} (partition "
                                          f"{report.root.partition or '(whole disk)'})"))
    if hyper_v_generation not in report.boot.generations:
        problems.append(("image.hyper_v_generation",
                         f"the definition says {hyper_v_generation} but the disk has {report.boot}"))
    if report.evidence is not None:
        signs = report.evidence.signs()
        if os_state == "Generalized" and signs:
            problems.append(("image.os_state", "the definition says Generalized but the disk was not generalized: "
                                               + ", ".join(signs)))
        elif os_state == "Specialized" and not signs:
            problems.append(("image.os_state", f"the definition says Specialized but the disk looks generalized: "
                                               f"/etc/machine-id is {report.evidence.machine_id}, no SSH host keys, "
                                               f"no user with uid >= {FIRST_PERSON_UID}, no waagent or cloud-init "
                                               "instance state (declare it Generalized so Azure provisions its VMs)"))
    if problems:
        raise DiskError(report.path, problems)
