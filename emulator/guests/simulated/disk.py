"""Simulated OS disks: JSON descriptors ``{"kind": "simulated", "os": {...}}`` and the base images.

A disk is the whole guest filesystem as facts: files, users, packages, services, hostname,
machine-id, SSH host keys, Windows ImageState. It is self-contained, so compute can store it on
a VM, a managed image or a gallery version and hand it back to boot from; booting copies it.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import time
from typing import Any

from emulator.guests.simulated import catalog

KIND = "simulated"
SIMULATED_NOTE = "Local Azure simulated guest: an in-process model of a VM, not a real machine."


def is_simulated(disk: dict[str, Any] | None) -> bool:
    return isinstance(disk, dict) and disk.get("kind") == KIND and isinstance(disk.get("os"), dict)


def descriptor(os_state: dict[str, Any]) -> dict[str, Any]:
    """A disk descriptor holding a deep copy of ``os_state`` (the caller keeps its own copy)."""
    return {"kind": KIND, "os": copy.deepcopy(os_state), "digest": digest(os_state)}


def digest(os_state: dict[str, Any]) -> str:
    import json

    return hashlib.sha256(json.dumps(os_state, sort_keys=True).encode()).hexdigest()[:16]


def known_images() -> dict[str, list[str]]:
    return {"Linux": ["debian-12"], "Windows": sorted(catalog.WINDOWS)}


def base_disk(os_type: str, image: str, version: str | None = None, *, now: float | None = None) -> dict[str, Any]:
    """The disk of a Marketplace image: ``base_disk("Linux", "debian-12")``, ``base_disk("Windows", "2022")``.

    ``image`` is matched loosely (an offer or sku such as ``debian-12``, ``12-gen2``,
    ``2022-datacenter-azure-edition``); ``version`` (``0.20240603.1234`` or ``20348.2461.240510``)
    fixes the month the image was built, which decides its package versions. Without it the
    image is one month old, as Marketplace ``latest`` images usually are.
    """
    serial = catalog.serial_from_version(version)
    if serial is None:
        serial = max(0, catalog.serial_now(time.time() if now is None else now) - 1)
    key = image.lower()
    if os_type.lower() == "linux":
        if "debian" in key or key.startswith("12"):
            return descriptor(debian_os(serial))
    elif os_type.lower() == "windows":
        for name in catalog.WINDOWS:
            year = name.rsplit("-", 1)[-1]
            if year in key:
                return descriptor(windows_os(name, serial))
    raise ValueError(f"no simulated {os_type} image matches {image!r}; known: {known_images()}")


def _file(data: str, mode: int = 0o644, owner: str = "root") -> dict[str, Any]:
    return {"data": data, "mode": mode, "owner": owner}


def os_release_text() -> str:
    lines = [f"# {SIMULATED_NOTE}"]
    lines += [f'{k}="{v}"' if " " in v or k.endswith("NAME") or k.endswith("URL") else f"{k}={v}"
              for k, v in catalog.DEBIAN_12.fields.items()]
    return "\n".join(lines) + "\n"


def debian_os(serial: int) -> dict[str, Any]:
    """A freshly built Debian 12 Azure image: generalized (no users, empty machine-id, no host keys)."""
    packages = {n: catalog.archive_version(n, serial) for n in catalog.closure(catalog.DEBIAN_BASE)}
    services: dict[str, dict[str, bool]] = {}
    for n in packages:
        for svc in catalog.DEBIAN[n].services:
            services[svc] = {"enabled": True, "active": False}
    dirs = ["/", "/bin", "/boot", "/dev", "/etc", "/etc/apt", "/etc/cloud", "/etc/cloud/cloud.cfg.d", "/etc/ssh",
            "/etc/ssh/sshd_config.d", "/etc/sudoers.d", "/home", "/opt", "/proc", "/root", "/run", "/srv", "/tmp",
            "/usr", "/usr/bin", "/usr/local", "/usr/local/bin", "/usr/sbin", "/var", "/var/cache", "/var/lib",
            "/var/lib/apt", "/var/lib/apt/lists", "/var/lib/cloud", "/var/lib/dhcp", "/var/lib/dpkg", "/var/log",
            "/var/tmp", "/var/lib/waagent"]
    files = {
        "/etc/os-release": _file(os_release_text()),
        "/etc/debian_version": _file("12.5\n"),
        "/etc/hostname": _file("localhost\n"),
        "/etc/hosts": _file("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"),
        "/etc/machine-id": _file(""),
        "/etc/sudoers": _file("Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n"
                              "@includedir /etc/sudoers.d\n", 0o440),
        "/etc/ssh/sshd_config": _file("Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n"
                                      "UsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\n"
                                      "Subsystem sftp /usr/lib/openssh/sftp-server\nClientAliveInterval 120\n"),
        "/etc/ssh/sshd_config.d/50-cloud-init.conf": _file("PasswordAuthentication no\n"),
        "/etc/apt/sources.list": _file(
            f"deb {catalog.MIRROR} bookworm main\ndeb {catalog.MIRROR} bookworm-updates main\n"
            f"deb {catalog.MIRROR}-security bookworm-security main\n"),
        "/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg": _file("reporting:\n  logging:\n    type: log\n"),
        "/etc/waagent.conf": _file("Provisioning.Agent=auto\nProvisioning.RegenerateSshHostKeyPair=y\n"
                                   "Provisioning.DeleteRootPassword=y\nLib.Dir=/var/lib/waagent\n"),
        "/etc/motd": _file("\nThe programs included with the Debian GNU/Linux system are free software.\n"),
        "/etc/resolv.conf": _file("nameserver 168.63.129.16\nsearch reddog.microsoft.com\n"),
        "/root/.bashrc": _file("# ~/.bashrc: executed by bash(1) for non-login shells.\n"),
        "/var/log/cloud-init.log": _file(""),
    }
    return {
        "family": "linux",
        "image": "debian-12",
        "simulated": True,
        "release": dict(catalog.DEBIAN_12.fields),
        "built_serial": serial,
        "files": files,
        "dirs": {d: {"mode": 0o1777 if d in ("/tmp", "/var/tmp") else 0o755, "owner": "root"} for d in dirs},
        "users": {
            "root": {"uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash", "groups": ["root"], "password": "*"},
            "daemon": {"uid": 1, "gid": 1, "home": "/usr/sbin", "shell": "/usr/sbin/nologin", "groups": ["daemon"],
                       "password": "*"},
            "nobody": {"uid": 65534, "gid": 65534, "home": "/nonexistent", "shell": "/usr/sbin/nologin",
                       "groups": ["nogroup"], "password": "*"},
            "sshd": {"uid": 100, "gid": 65534, "home": "/run/sshd", "shell": "/usr/sbin/nologin", "groups": [],
                     "password": "*"},
        },
        "packages": packages,
        "services": services,
        "apt": {"lists_serial": serial},
        "history": [{"event": "built", "serial": serial}],
    }


def windows_os(release: str, serial: int) -> dict[str, Any]:
    """A Windows Server Marketplace image: sysprepped (IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE)."""
    rel = catalog.WINDOWS[release]
    return {
        "family": "windows",
        "image": release,
        "simulated": True,
        "caption": rel.caption,
        "build": rel.build,
        "ubr": catalog.windows_ubr(release, serial),
        "built_serial": serial,
        "computer_name": "WIN-" + secrets.token_hex(5).upper()[:11],
        "image_state": "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
        "machine_sid": None,
        "users": {
            "Administrator": {"enabled": False, "admin": True, "nt_hash": None, "password": None, "sid_rid": 500},
            "Guest": {"enabled": False, "admin": False, "nt_hash": None, "password": None, "sid_rid": 501},
        },
        "hotfixes": [catalog.servicing_stack(release, serial), catalog.cumulative_update(release, serial)],
        "features": sorted(rel.features),
        "services": {
            "WinRM": {"display": "Windows Remote Management (WS-Management)", "start": "Automatic", "running": True},
            "RdAgent": {"display": "RdAgent", "start": "Automatic", "running": True},
            "WindowsAzureGuestAgent": {"display": "Windows Azure Guest Agent", "start": "Automatic", "running": True},
            "wuauserv": {"display": "Windows Update", "start": "Manual", "running": False},
            "W32Time": {"display": "Windows Time", "start": "Automatic", "running": True},
        },
        "software": {"Microsoft Edge": "123.0.2420.65", "Windows Azure VM Agent - 2.7.41491.1102": "2.7.41491.1102"},
        "files": {},
        "history": [{"event": "built", "serial": serial}],
    }
