"""Small real disk files for tests: a Debian-like root filesystem on an MBR or GPT disk, in any import format.

Built without root, loop devices or mounts (sfdisk, ``mkfs.ext4 -E offset= -d``, qemu-img), in
well under a second for a few MiB. Other tests (the import DAG's) use ``build_disk``::

    build_disk(path, *, size_mib=8, fmt="raw", table="mbr", generalized=True,
               esp=True, bios_boot=False, user="alice") -> Path

- ``fmt``: "raw", "qcow2", "vmdk" (monolithic sparse), "vhd" (fixed, whole MiB + 512-byte
  footer), "vhd-dynamic", "vhdx". ``path`` is the file written (its suffix is not changed).
- ``table``: "mbr" (one bootable Linux partition from 1 MiB: boots as V1) or "gpt" (with
  ``esp`` an EFI system partition of 1 MiB: boots as V2; with ``bios_boot`` a BIOS boot
  partition: boots as V1; the ext4 root takes the rest).
- ``generalized``: True leaves an empty /etc/machine-id, no SSH host keys, no user account and no
  waagent/cloud-init state (as ``waagent -deprovision+user`` + ``cloud-init clean`` leave it);
  False writes a set machine-id, SSH host keys, user ``user`` (uid 1000) with a home,
  /var/lib/waagent/provisioned + ovf-env.xml and a cloud-init instance.

The root filesystem's UUID is ``ROOT_UUID``; its os-release says Debian GNU/Linux 12; its dpkg database
lists ``PACKAGES`` as installed (and one package removed with its config files kept).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MIB = 1024 * 1024
SECTOR = 512
ROOT_UUID = "6f1a3c2e-7d4b-4e8a-9c1f-2b3d4e5f6a7b"
FORMATS = ("raw", "qcow2", "vmdk", "vhd", "vhd-dynamic", "vhdx")
_QEMU_OUT = {"raw": ["-O", "raw"], "qcow2": ["-O", "qcow2"], "vmdk": ["-O", "vmdk"],
             "vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"], "vhd-dynamic": ["-O", "vpc", "-o", "subformat=dynamic"],
             "vhdx": ["-O", "vhdx"]}
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_TYPE = "21686148-6449-6E6F-744E-656564454649"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
              'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')
# what DPKG_STATUS says is installed
PACKAGES = ("bash=5.2.15-2+b7", "dpkg=1.21.22", "openssh-server=1:9.2p1-2+deb12u3")
DPKG_STATUS = ("Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b7\n"
               "Description: GNU Bourne Again SHell\n the shell\n\n"
               "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\n\n"
               "Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\n"
               "Version: 1:9.2p1-2+deb12u3\n\n"
               "Package: telnet\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.17+2.4-2\n")
PASSWD = ("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
          "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")


def tool(name: str) -> str:
    for where in (os.environ.get("PATH", ""), "/usr/sbin:/sbin:/usr/bin:/bin"):
        for d in where.split(":"):
            if d and os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
    raise FileNotFoundError(name)


def sh(*cmd: str, stdin: str | None = None) -> str:
    proc = subprocess.run([tool(cmd[0]), *cmd[1:]], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def write_rootfs(root: Path, *, generalized: bool, user: str = "alice") -> Path:
    """A tiny Debian-like root filesystem tree at ``root`` (see the module doc for what ``generalized`` changes)."""
    def put(rel: str, text: str, mode: int = 0o644) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    put("usr/lib/os-release", OS_RELEASE)
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    put("etc/hostname", "localhost\n")
    put("var/lib/dpkg/status", DPKG_STATUS)
    put("etc/ssh/sshd_config", "PasswordAuthentication no\n")
    put("etc/waagent.conf", "Provisioning.Agent=auto\n")
    (root / "var/lib/waagent").mkdir(parents=True)
    (root / "var/lib/cloud").mkdir(parents=True)
    (root / "home").mkdir()
    (root / "var/log").mkdir(parents=True)
    if generalized:
        put("etc/machine-id", "")
        put("etc/passwd", PASSWD)
        return root
    put("etc/machine-id", "3f6c9a1e2b4d4c8e9f0a1b2c3d4e5f60\n")
    put("etc/passwd", PASSWD + f"{user}:x:1000:1000:{user}:/home/{user}:/bin/bash\n")
    (root / "home" / user).mkdir()
    put(f"home/{user}/.bashrc", "# bash\n")
    for kind in ("ed25519", "ecdsa"):  # real keys: a specialized disk's sshd serves them as they are
        sh("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@localhost", "-f", str(root / f"etc/ssh/ssh_host_{kind}_key"))
    put("var/lib/waagent/provisioned", "")
    put("var/lib/waagent/ovf-env.xml", "<Environment/>\n")
    put("var/lib/cloud/instances/iid-local01/boot-finished", "1\n")
    (root / "var/lib/cloud/instance").symlink_to("/var/lib/cloud/instances/iid-local01")
    return root


def _partition(raw: Path, size_mib: int, table: str, esp: bool, bios_boot: bool) -> tuple[int, int]:
    """Write the partition table; (root offset, root size) in bytes."""
    if table == "mbr":
        sh("sfdisk", "--quiet", str(raw), stdin="label: dos\nstart=2048, type=83, bootable\n")
        return MIB, (size_mib - 1) * MIB
    if table != "gpt":
        raise ValueError(f"table must be mbr or gpt, got {table!r}")
    lines, start = ["label: gpt"], 1
    if esp:
        lines.append(f"start={start * 2048}, size=2048, type={ESP_TYPE}, name=\"EFI System\"")
        start += 1
    if bios_boot:
        lines.append(f"start={start * 2048}, size=2048, type={BIOS_BOOT_TYPE}, name=\"BIOS boot\"")
        start += 1
    root_mib = size_mib - start - 1  # the backup GPT takes the last 33 sectors
    lines.append(f"start={start * 2048}, size={root_mib * 2048}, type={LINUX_TYPE}, name=\"root\"")
    sh("sfdisk", "--quiet", str(raw), stdin="\n".join(lines) + "\n")
    return start * MIB, root_mib * MIB


def build_disk(path: Path, *, size_mib: int = 8, fmt: str = "raw", table: str = "mbr", generalized: bool = True,
               esp: bool = True, bios_boot: bool = False, user: str = "alice") -> Path:
    """A Debian-like disk of ``size_mib`` MiB at ``path`` (see the module doc); returns ``path``."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    work = path.with_name(f".{path.name}.build")
    work.mkdir()
    try:
        root = write_rootfs(work / "root", generalized=generalized, user=user)
        raw = work / "disk.raw"
        with open(raw, "wb") as fh:
            fh.truncate(size_mib * MIB)
        offset, size = _partition(raw, size_mib, table, esp, bios_boot)
        sh("mkfs.ext4", "-F", "-q", "-U", ROOT_UUID, "-L", "root", "-E", f"offset={offset}", "-d", str(root), str(raw),
           f"{size // 1024}k")
        if fmt == "raw":
            os.replace(raw, path)
        else:
            sh("qemu-img", "convert", "-f", "raw", *_QEMU_OUT[fmt], str(raw), str(path))
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)
    return path
