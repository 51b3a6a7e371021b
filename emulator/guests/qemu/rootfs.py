"""What the base image's root filesystem gets on top of Debian's packages, and how it is made.

Everything here is rendered to text first (``config_files``, ``mmdebstrap_args``) so the image
cache key can hash the recipe itself: change a file below and the next build is a new image.
The choices follow ../shared/LOCAL-GUEST-NOTES.md (boot-time wins and traps measured under TCG).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from emulator.guests.qemu.resolve import sources
from emulator.guests.qemu.tools import tool

PACKAGES = [
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "zstd",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "cloud-init",
    "waagent",
    "sudo",
    "netbase",
    "ca-certificates",
    "iproute2",
    "e2fsprogs",
    "qemu-guest-agent",
    "systemd-resolved",
]
# Loaded by the initramfs (MODULES=list keeps it ~5 MiB and fast to unpack under TCG).
INITRAMFS_MODULES = [
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
    "sd_mod",
    "ext4",
    "crc32c_generic",
]
EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*", "/usr/share/lintian/*"]

# Written before the packages are installed, so the kernel's first initramfs is already small.
SETUP_FILES = {
    "etc/initramfs-tools/conf.d/local-azure.conf": "MODULES=list\nCOMPRESS=zstd\n",
    "etc/initramfs-tools/hooks/local-azure-virtio": (
        '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\n. /usr/share/initramfs-tools/hook-functions\n'
        + "".join(f"force_load {m}\n" for m in INITRAMFS_MODULES)
    ),
}


def config_files(root_uuid: str) -> dict[str, str]:
    """Files written into the finished rootfs (path relative to / -> content)."""
    return {
        "etc/cloud/cloud.cfg.d/90-local-azure.cfg": (
            "# Local Azure: NoCloud seed, fast host keys, no locale generation.\n"
            "datasource_list: [NoCloud, None]\n"
            "ssh_genkeytypes: [ed25519, ecdsa]\n"
            "ssh_deletekeys: true\n"
            "locale: C.UTF-8\n"
        ),
        # cloud-init only honours this in its own file name.
        "etc/cloud/cloud.cfg.d/99-disable-network-config.cfg": "network: {config: disabled}\n",
        "etc/systemd/network/80-local-azure-dhcp.network": (
            "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n\n[DHCPv4]\nUseDomains=true\n"
        ),
        "etc/fstab": f"UUID={root_uuid} / ext4 errors=remount-ro 0 1\n",
        "etc/default/locale": "LANG=C.UTF-8\n",
        "etc/hostname": "localhost\n",
        "etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
        # Empty: systemd makes a fresh one on first boot, so clones never share it.
        "etc/machine-id": "",
    }


WAAGENT_SETTINGS = {
    # cloud-init provisions (waagent.service does not even start off Hyper-V).
    "Provisioning.Agent": "disabled",
    "ResourceDisk.Format": "n",
    "ResourceDisk.EnableSwap": "n",
}
ENABLE_UNITS = ["systemd-networkd.service", "systemd-resolved.service", "serial-getty@ttyS0.service"]
# e2scrub_reap burns ~12 s of CPU at every boot under TCG, competing with cloud-init and sshd.
MASK_UNITS = ["e2scrub_reap.service", "e2scrub_all.timer"]


def mmdebstrap_args(suite: str) -> list[str]:
    """The mmdebstrap arguments, without the target directory (which goes before the mirrors)."""
    return [
        "--variant=minbase",
        "--mode=auto",
        "--format=directory",
        '--aptopt=APT::Install-Recommends "false"',
        '--aptopt=Acquire::Languages "none"',
        *(f"--dpkgopt=path-exclude={e}" for e in EXCLUDES),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        f"--include={','.join(PACKAGES)}",
    ]


def recipe(suite: str) -> dict[str, object]:
    """Everything that decides the image besides the package versions (hashed into the key)."""
    return {
        "suite": suite,
        "sources": sources(suite),
        "mmdebstrap": mmdebstrap_args(suite),
        "setup_files": SETUP_FILES,
        "config_files": config_files("<uuid>"),
        "waagent": WAAGENT_SETTINGS,
        "enable": ENABLE_UNITS,
        "mask": MASK_UNITS,
    }


def _write(root: Path, rel: str, content: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(content)
    path.chmod(mode)


def _setup_hook(dest: Path) -> str:
    """A setup hook script: copy SETUP_FILES into the new root ($1) before any package."""
    dest.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh", "set -e"]
    for rel, content in SETUP_FILES.items():
        src = dest / rel.replace("/", "_")
        src.write_text(content)
        mode = "755" if "/hooks/" in rel else "644"
        lines += [f'mkdir -p "$1/{os.path.dirname(rel)}"', f'install -m {mode} "{src}" "$1/{rel}"']
    script = dest / "setup-hook.sh"
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return str(script)


def debootstrap(rootfs: Path, suite: str, work: Path, log: object = print) -> None:
    """Install minbase + PACKAGES into ``rootfs`` from the suite and its updates/security."""
    cmd = [
        tool("mmdebstrap"),
        *mmdebstrap_args(suite),
        f"--setup-hook={_setup_hook(work / 'hook')}",
        suite,
        str(rootfs),
        *sources(suite),
    ]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed ({proc.returncode}): {proc.stderr.strip()[-3000:]}")


def customize(rootfs: Path, root_uuid: str) -> None:
    """Apply config_files, waagent settings, units, and drop build-host leftovers."""
    for rel, content in config_files(root_uuid).items():
        _write(rootfs, rel, content, 0o444 if rel == "etc/machine-id" else 0o644)
    conf = rootfs / "etc/waagent.conf"
    lines = conf.read_text().splitlines()
    for key, value in WAAGENT_SETTINGS.items():
        lines = [ln for ln in lines if not ln.startswith(f"{key}=")] + [f"{key}={value}"]
    conf.write_text("\n".join(lines) + "\n")
    subprocess.run(
        [tool("systemctl"), f"--root={rootfs}", "enable", "--quiet", *ENABLE_UNITS], check=True, capture_output=True
    )
    subprocess.run(
        [tool("systemctl"), f"--root={rootfs}", "mask", "--quiet", *MASK_UNITS], check=True, capture_output=True
    )
    # DNS through the systemd-resolved stub: survives deprovision deleting resolv.conf contents.
    resolv = rootfs / "etc/resolv.conf"
    if resolv.exists() or resolv.is_symlink():
        resolv.unlink()
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    for leftover in [*rootfs.glob("etc/ssh/ssh_host_*"), rootfs / "var/lib/dbus/machine-id"]:
        if leftover.exists() or leftover.is_symlink():
            leftover.unlink()
    for cache in ("var/cache/apt", "var/lib/apt/lists"):
        for entry in (rootfs / cache).glob("*"):
            if entry.is_file():
                entry.unlink()


def kernel_files(rootfs: Path) -> tuple[Path, Path]:
    """The (vmlinuz, initrd.img) installed in the rootfs, newest version."""
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError("no kernel installed in the rootfs")
    version = kernels[-1].name[len("vmlinuz-") :]
    initrd = rootfs / "boot" / f"initrd.img-{version}"
    if not initrd.exists():
        raise RuntimeError(f"no initrd for kernel {version}")
    return kernels[-1], initrd


def installed_manifest(rootfs: Path) -> dict[str, str]:
    """{package: version} as dpkg recorded it in the rootfs (what really went in)."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = (line.split() for line in out.splitlines())
    return dict(sorted((r[0], r[1]) for r in rows if len(r) == 3 and r[2] == "installed"))


def copy_out(src: Path, dest: Path) -> None:
    shutil.copyfile(src, dest)
    dest.chmod(0o644)  # Debian kernels are 0600: QEMU run as a user must read them
