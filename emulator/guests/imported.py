"""Imported OS disks: what the guest runtimes boot from an uploaded fixed VHD (e.g. a Debian disk from KVM).

A gallery image version or managed image made from a VHD page blob first holds the plain file,
``{"kind": "vhd", "path": ...}``, which no runtime can boot. ``descriptor_for`` looks at the disk
as firmware and a bootloader would (partition table, the Linux root filesystem, its /boot) and
answers what the emulator's Linux runtime boots:

- QEMU: ``{"kind": "file", "format": "vpc", "path", "kernel", "initrd", "root_uuid", "cmdline"}``.
  The newest kernel and its initrd are copied out into ``<state>/imported-boot/<sha256>``: named
  by content, shared by every descriptor that has the same bytes, never deleted by a release.
- simulated: ``{"kind": "simulated", "os": {...}, "path"}``, the disk's facts in the simulated
  guest's schema (os-release, hostname, users and their homes and keys, machine-id, SSH host keys,
  dpkg's installed packages, enabled systemd units, /etc and the users' dotfiles). ``path`` stays
  so gallery replication still copies the real bytes.

A disk without a Linux root filesystem (blank, LVM, NTFS ...) keeps the ``vhd`` descriptor, and
booting it fails on the VM with ``boot_failure``'s error instead of an exception. Windows disks
are not imported (the simulated Windows guest has no disk to read them into): they keep the
``vhd`` descriptor too. Reading the disk never raises: errors are logged and give ``vhd``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import posixpath
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.core.context import Context
from emulator.guests.base import GuestSpec
from emulator.guests.diskread import Entry, ExtFs, Partition, ext_uuid, partitions
from emulator.guests.simulated import disk as simulated_disk

log = logging.getLogger("emulator.guests.imported")

VHD_KIND = "vhd"
BOOT_CACHE = "imported-boot"  # under the state dir: kernels and initrds by content
UNBOOTABLE_CODE = "OSProvisioningClientError"
MAX_FILE = 64 * 1024  # files larger than this stay on the disk only (the simulated guest keeps facts, not data)
MAX_TOTAL = 2 * 1024 * 1024
MAX_ENTRIES = 20000
# Trees listed (with how many directory levels below them) and the files of them the simulated guest gets.
TREES = {"/etc": 8, "/root": 1, "/home": 2, "/var/lib/cloud": 3, "/var/lib/waagent": 0}
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
GENERATED = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")  # the simulated guest derives these
FIRST = ("/etc/golden-image/", "/etc/os-release", "/etc/hostname", "/etc/hosts", "/etc/machine-id", "/etc/ssh/",
         "/etc/sudoers", "/home/", "/root/", "/var/lib/")  # read before the budget runs out


@dataclass(frozen=True)
class LinuxRoot:
    """Where the OS lives on the disk: the root filesystem (and a separate /boot, if any)."""

    fs: ExtFs
    partition: Partition
    uuid: str
    others: tuple[ExtFs, ...]  # the other ext filesystems: one may be /boot


def descriptor_for(ctx: Context, path: Path, *, os_type: str) -> dict[str, Any]:
    """The disk descriptor the emulator's Linux runtime boots from the fixed VHD at ``path``.

    ``{"kind": "vhd", "path": ...}`` when the disk holds no Linux system, or for ``os_type``
    Windows (importing Windows disks is out of scope), or when the disk cannot be read.
    """
    path = Path(path)
    fallback = {"kind": VHD_KIND, "path": str(path)}
    if os_type.lower() != "linux":
        return fallback
    try:
        from emulator.guests.qemu.runtime import linux_runtime_name

        runtime = linux_runtime_name()
        root = find_root(path)
        if root is None:
            log.info("imported disk %s: no Linux root filesystem found; it stays a plain VHD", path.name)
            return fallback
        work = Path(ctx.state_dir) / BOOT_CACHE
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".read-", dir=work) as tmp:
            if runtime == "qemu":
                return qemu_descriptor(root, path, Path(tmp), work)
            return {**simulated_disk.descriptor(linux_os(root, path, Path(tmp))), "path": str(path)}
    except Exception:
        log.warning("imported disk %s could not be read; it stays a plain VHD", path.name, exc_info=True)
        return fallback


def boot_failure(spec: GuestSpec) -> tuple[str, str] | None:
    """(code, message) of the failed boot of a VM whose OS disk has no OS a runtime can boot, else None."""
    if (spec.disk or {}).get("kind") != VHD_KIND:
        return None
    name = spec.vm_id.rstrip("/").rsplit("/", 1)[-1]
    source = Path(str(spec.disk.get("path") or "the VHD")).name
    if spec.os_type == "Windows":
        why = (f"the local Azure does not run Windows from an imported VHD ({source}); use a Windows "
               "Marketplace image")
    else:
        why = (f"no bootable operating system was found on its OS disk ({source}): no partition (MBR or GPT) "
               "holds a Linux root filesystem (ext2/3/4). Boot diagnostics: 'No bootable device.' Upload a fixed "
               "VHD of the whole disk, partition table included")
    return UNBOOTABLE_CODE, f"OS Provisioning for VM '{name}' failed: {why}."


# finding the OS ----------------------------------------------------------------------------------------
def find_root(path: Path) -> LinuxRoot | None:
    """The first ext partition holding /etc/os-release (or /etc/passwd), as a bootloader's config would name it."""
    from emulator.storage.vhd import check_fixed

    footer = check_fixed(path)
    found: list[tuple[Partition, ExtFs, str]] = []
    for part in partitions(path, footer.current_size):
        fs_uuid = ext_uuid(path, part.start)
        if fs_uuid is not None:
            found.append((part, ExtFs(path, part.start), fs_uuid))
    for part, fs, fs_uuid in found:
        etc = {e.path for e in fs.list_dirs(["/etc"]).get("/etc", [])}
        if "/etc/os-release" in etc or "/etc/passwd" in etc:
            return LinuxRoot(fs, part, fs_uuid, tuple(f for p, f, _ in found if p != part))
    return None


def version_key(name: str) -> list[tuple[int, str]]:
    """Orders kernel versions as people read them: 6.1.0-18 after 6.1.0-9."""
    return [(int(t), "") if t.isdigit() else (-1, t) for t in re.split(r"(\d+)", name) if t]


def kernel_pair(root: LinuxRoot, tmp: Path) -> tuple[Path, Path]:
    """Host copies of the newest kernel and its initrd: /boot/vmlinuz-V + /boot/initrd.img-V, a separate /boot
    partition's vmlinuz-V, or the /vmlinuz and /initrd.img links."""
    candidates: list[tuple[ExtFs, str]] = [(root.fs, "/boot")] + [(fs, "/") for fs in root.others]
    for fs, folder in candidates:
        names = {posixpath.basename(e.path): e for e in fs.list_dirs([folder]).get(folder, [])}
        versions = sorted((n[len("vmlinuz-"):] for n in names if n.startswith("vmlinuz-")), key=version_key,
                          reverse=True)
        for v in versions:
            if f"initrd.img-{v}" not in names:
                continue
            kernel = fs.resolve(posixpath.join(folder, f"vmlinuz-{v}"), tmp / "k")
            initrd = fs.resolve(posixpath.join(folder, f"initrd.img-{v}"), tmp / "i")
            if kernel and initrd:
                return kernel[1], initrd[1]
    kernel = root.fs.resolve("/vmlinuz", tmp / "lk")
    initrd = root.fs.resolve("/initrd.img", tmp / "li")
    if kernel and initrd:
        return kernel[1], initrd[1]
    raise FileNotFoundError("no kernel with an initrd in /boot (vmlinuz-*, initrd.img-*) or at /vmlinuz")


def cached(src: Path, cache: Path) -> Path:
    """``src`` in the content-addressed cache (0644: QEMU reads it), copied there unless it already is."""
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    target = cache / digest.hexdigest()
    if not target.exists():
        partial = cache / f".{target.name}.{os.getpid()}.part"
        shutil.copyfile(src, partial)
        partial.chmod(0o644)
        partial.replace(target)
    return target


def qemu_descriptor(root: LinuxRoot, path: Path, tmp: Path, cache: Path) -> dict[str, Any]:
    from emulator.guests.qemu.image import cmdline

    kernel, initrd = kernel_pair(root, tmp)
    return {"kind": "file", "format": "vpc", "path": str(path), "kernel": str(cached(kernel, cache)),
            "initrd": str(cached(initrd, cache)), "root_uuid": root.uuid, "cmdline": cmdline(root.uuid)}


# the simulated guest's facts ---------------------------------------------------------------------------
def walk(fs: ExtFs) -> dict[str, Entry]:
    """Every entry of the TREES (to their depth), of / and of the systemd unit directories, by path."""
    out: dict[str, Entry] = {}
    level = list(TREES.items())
    for entries in fs.list_dirs(["/", *UNIT_DIRS]).values():
        out.update({e.path: e for e in entries})
    while level and len(out) < MAX_ENTRIES:
        depth_of = dict(level)
        listed = fs.list_dirs([d for d, _ in level])
        level = []
        for d, entries in listed.items():
            for e in entries:
                out[e.path] = e
                if e.kind == "dir" and depth_of[d] > 0:
                    level.append((e.path, depth_of[d] - 1))
    return out


def wanted(p: str) -> bool:
    """Files the simulated guest gets: /etc, the users' dotfiles and keys, cloud-init and waagent state."""
    parts = p.strip("/").split("/")
    if p in GENERATED:
        return False
    if parts[0] == "etc":
        return True
    if parts[0] == "root":
        return len(parts) == 2 or (len(parts) == 3 and parts[1] == ".ssh")
    if parts[0] == "home":
        return len(parts) == 3 or (len(parts) == 4 and parts[2] == ".ssh")
    if parts[:3] == ["var", "lib", "cloud"]:
        return parts[3:4] == ["data"] or (parts[3:4] == ["instances"] and parts[-1] == "boot-finished")
    return parts[:3] == ["var", "lib", "waagent"]


def _priority(p: str) -> tuple[int, int, str]:
    first = next((i for i, pre in enumerate(FIRST) if p == pre or p.startswith(pre)), len(FIRST))
    return first, p.count("/"), p


def _content(host: Path) -> dict[str, Any]:
    raw = host.read_bytes()
    try:
        return {"data": raw.decode()}
    except UnicodeDecodeError:
        return {"data": base64.b64encode(raw).decode(), "encoding": "base64"}


def _text(host: Path | None) -> str:
    return host.read_text(errors="replace") if host is not None else ""


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            try:
                words = shlex.split(value)
            except ValueError:
                words = [value]
            out[key] = " ".join(words)
    return out


def parse_dpkg_status(text: str) -> dict[str, str]:
    """Installed packages (``Status: install ok installed``) and their versions."""
    out = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
        if fields.get("Package") and fields.get("Status", "").split()[-1:] == ["installed"]:
            arch = fields.get("Architecture", "")
            name = fields["Package"] if arch in ("", "all", "amd64") else f"{fields['Package']}:{arch}"
            out[name] = fields.get("Version", "")
    return out


def parse_users(passwd: str, group: str, shadow: str) -> dict[str, dict[str, Any]]:
    gid_names: dict[int, str] = {}
    members: dict[str, list[str]] = {}
    for line in group.splitlines():
        f = line.split(":")
        if len(f) >= 4 and f[2].isdigit():
            gid_names[int(f[2])] = f[0]
            for m in filter(None, f[3].split(",")):
                members.setdefault(m, []).append(f[0])
    hashes = {f[0]: f[1] for line in shadow.splitlines() if len(f := line.split(":")) >= 2}
    users = {}
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) < 7 or not f[2].isdigit() or not f[3].isdigit():
            continue
        name, uid, gid = f[0], int(f[2]), int(f[3])
        primary = gid_names.get(gid)
        groups = [g for g in [primary, *members.get(name, [])] if g]
        users[name] = {"uid": uid, "gid": gid, "gecos": f[4], "home": f[5], "shell": f[6],
                       "groups": list(dict.fromkeys(groups)), "password": hashes.get(name) or "*"}
    return users


def services_of(entries: dict[str, Entry], links: dict[str, str]) -> dict[str, dict[str, bool]]:
    """Units installed in the unit directories (disabled) and those a ``*.wants``/``*.requires`` link enables;
    ``.service`` units by their bare name, as the simulated systemctl names them."""
    def unit(name: str) -> str | None:
        if "@." in name or not name.endswith((".service", ".timer", ".socket", ".path")):
            return None
        return name.removesuffix(".service")

    out: dict[str, dict[str, bool]] = {}
    for p, e in entries.items():
        folder, name = posixpath.split(p)
        if folder in UNIT_DIRS and e.kind in ("file", "link") and (u := unit(name)):
            out.setdefault(u, {"enabled": False, "active": False})
    for p, e in entries.items():
        folder, name = posixpath.split(p)
        if (posixpath.dirname(folder) == "/etc/systemd/system" and folder.endswith((".wants", ".requires"))
                and e.kind in ("link", "file") and (u := unit(name))):
            out[u] = {"enabled": True, "active": False}
    for p, target in links.items():  # masked: a link to /dev/null in /etc/systemd/system
        folder, name = posixpath.split(p)
        if folder == "/etc/systemd/system" and target == "/dev/null" and (u := unit(name)):
            out[u] = {"enabled": False, "active": False, "masked": True}
    return out


def linux_os(root: LinuxRoot, path: Path, tmp: Path) -> dict[str, Any]:
    """The simulated guest's ``os`` dict (see ``simulated.disk.debian_os``) from the facts on the disk."""
    fs = root.fs
    entries = walk(fs)
    special = fs.fetch(["/etc/passwd", "/etc/group", "/etc/shadow", "/var/lib/dpkg/status"], tmp / "special")
    users = parse_users(_text(special.get("/etc/passwd")), _text(special.get("/etc/group")),
                        _text(special.get("/etc/shadow")))
    names: dict[int, str] = {}
    for n, u in users.items():  # a uid listed twice is shown by its first name, as ls does
        names.setdefault(int(u["uid"]), n)

    def owner(e: Entry) -> str:
        return names.get(e.uid, str(e.uid))

    dirs = {"/": {"mode": 0o755, "owner": "root"}}
    dirs.update({p: {"mode": e.perm, "owner": owner(e)} for p, e in entries.items() if e.kind == "dir"})
    picked, budget, skipped = [], MAX_TOTAL, 0
    for p in sorted((p for p, e in entries.items() if e.kind in ("file", "link") and wanted(p)), key=_priority):
        e = entries[p]
        if e.kind == "file" and (e.size > MAX_FILE or e.size > budget):
            skipped += 1
            continue
        budget -= e.size if e.kind == "file" else 0
        picked.append(p)
    copies = fs.fetch(picked, tmp / "files")
    files: dict[str, dict[str, Any]] = {}
    links: dict[str, str] = {}
    for p, host in copies.items():
        e = entries[p]
        if host.is_symlink():
            links[p] = os.readlink(host)
            files[p] = {"link": links[p], "data": "", "mode": 0o777, "owner": owner(e)}
        else:
            files[p] = {**_content(host), "mode": e.perm, "owner": owner(e)}
    for p in ("/etc/os-release", "/etc/hostname", "/etc/machine-id"):  # identity: the file, not a link to it
        if p in links:
            got = fs.resolve(p, tmp / "resolve" / p.strip("/"))
            if got is not None:
                files[p] = {**_content(got[1]), "mode": 0o644, "owner": "root"}
    etc_release = files.get("/etc/os-release", {})
    release_text = str(etc_release.get("data", "")) if "link" not in etc_release and "encoding" not in etc_release \
        else ""
    if not release_text:  # os-release(5): /etc/os-release, else /usr/lib/os-release
        got = fs.resolve("/usr/lib/os-release", tmp / "release-usr")
        release_text = _text(got[1] if got else None)
    release = parse_os_release(release_text)
    files["/etc/os-release"] = {"data": f"# {simulated_disk.SIMULATED_NOTE}\n{release_text}", "mode": 0o644,
                                "owner": "root"}
    if skipped:
        log.info("imported disk %s: %d large files left out of the simulated guest", path.name, skipped)
    return {
        "family": "linux",
        "image": "-".join(x for x in (release.get("ID", "linux"), release.get("VERSION_ID", "")) if x),
        "simulated": True,
        "release": release,
        "imported": {"from": path.name, "partition": root.partition.number, "scheme": root.partition.scheme,
                     "root_uuid": root.uuid, "files_left_out": skipped},
        "files": files,
        "dirs": dirs,
        "users": users,
        "packages": parse_dpkg_status(_text(special.get("/var/lib/dpkg/status"))),
        "services": services_of(entries, links),
        "history": [{"event": "imported", "from": path.name}],
    }
