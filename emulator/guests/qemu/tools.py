"""Host tools the QEMU guests need, checked up front so a missing one fails with the fix."""

from __future__ import annotations

import shutil

# command -> the Debian package that provides it (./factory install_system installs them).
BUILD_TOOLS: dict[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "apt-get": "apt",
    "qemu-img": "qemu-utils",
    "mkfs.ext4": "e2fsprogs",
    "sfdisk": "fdisk",
    "systemctl": "systemd",
}
RUNTIME_TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "genisoimage": "genisoimage",
}
IMPORT_TOOLS: dict[str, str] = {  # reading an uploaded VHD's filesystem (emulator/guests/imported.py)
    "debugfs": "e2fsprogs",
}


class ToolsMissing(RuntimeError):
    """Raised with the apt-get command that installs what is missing."""

    def __init__(self, packages: list[str]) -> None:
        self.packages = packages
        super().__init__(
            "missing host tools for QEMU guests; install them with: "
            f"apt-get install -y {' '.join(packages)} (./factory install does this)"
        )


def missing_packages(tools: dict[str, str]) -> list[str]:
    """The apt packages providing the commands of ``tools`` that are not on PATH (or in sbin)."""
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    missing = {pkg for cmd, pkg in tools.items() if not (shutil.which(cmd) or shutil.which(cmd, path=path))}
    return sorted(missing)


def ensure_tools(tools: dict[str, str] = BUILD_TOOLS) -> None:
    """Raise ``ToolsMissing`` naming every apt package still to install."""
    missing = missing_packages(tools)
    if missing:
        raise ToolsMissing(missing)


def tool(cmd: str) -> str:
    """Absolute path of ``cmd``, also found in sbin when PATH lacks it (non-login shells)."""
    found = shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not found:
        raise ToolsMissing([BUILD_TOOLS.get(cmd) or RUNTIME_TOOLS.get(cmd) or IMPORT_TOOLS.get(cmd) or cmd])
    return found
