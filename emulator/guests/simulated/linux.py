"""The simulated Debian guest's system: filesystem, accounts, packages, services, cloud-init, waagent.

Pure state transitions over the disk's ``os`` dict (no I/O, no clock, no threads), so the
interesting behaviour (what cloud-init does on first boot, what ``waagent -deprovision+user``
removes) is unit-testable and matches LOCAL-GUEST-NOTES.md's measurements of the real thing.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import posixpath
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from emulator.guests.simulated import catalog

DEFAULT_GROUPS = ["adm", "audio", "cdrom", "dialout", "dip", "floppy", "netdev", "plugdev", "sudo", "video"]
HOST_KEY_TYPES = ("ed25519", "ecdsa")
DBUS_MACHINE_ID = "/var/lib/dbus/machine-id"  # dbus links it to /etc/machine-id at every boot when absent
PBKDF2_ROUNDS = 20000
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
ROOT_ONLY = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/var/lib/waagent", "/root",
             "/var/lib/cloud/instance")
VIRTUAL = ("/etc/passwd", "/etc/group", "/etc/shadow", "/dev/null", "/proc/version")


class FsError(Exception):
    """A failed filesystem call; ``str()`` is the strerror (``No such file or directory`` ...)."""


@dataclass
class Provisioning:
    """osProfile as cloud-init's NoCloud/Azure datasource presents it on a generalized image's first boot."""

    instance_id: str
    hostname: str
    username: str
    ssh_keys: list[str] = field(default_factory=list)
    password: str | None = None
    custom_data: bytes | None = None


def hash_password(password: str) -> str:
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt.encode(), PBKDF2_ROUNDS).hex()
    return f"$pbkdf2-sha512${PBKDF2_ROUNDS}${salt}${digest}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("$pbkdf2-sha512$"):
        return False
    _, _, rounds, salt, digest = stored.split("$")
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt.encode(), int(rounds)).hex()
    return hmac.compare_digest(got, digest)


def generate_host_keys() -> dict[str, tuple[str, str]]:
    """New SSH host key pairs: type -> (private key in OpenSSH format, public key line)."""
    import asyncssh

    keys = {}
    for kind, alg in (("ed25519", "ssh-ed25519"), ("ecdsa", "ecdsa-sha2-nistp256")):
        key = asyncssh.generate_private_key(alg, comment="root@simulated")
        keys[kind] = (key.export_private_key().decode(), key.export_public_key().decode())
    return keys


class LinuxSystem:
    """Operations on a simulated Debian disk (``os``) plus the running kernel's hostname."""

    def __init__(self, os_state: dict[str, Any]) -> None:
        self.os = os_state
        self.hostname = self._static_hostname() or "localhost"

    # filesystem -------------------------------------------------------------------
    @property
    def files(self) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = self.os["files"]
        return files

    @property
    def dirs(self) -> dict[str, dict[str, Any]]:
        dirs: dict[str, dict[str, Any]] = self.os["dirs"]
        return dirs

    @staticmethod
    def norm(path: str, cwd: str = "/") -> str:
        return posixpath.normpath(posixpath.join(cwd, path)).replace("//", "/")

    def exists(self, path: str) -> bool:
        return self.is_file(path) or self.is_dir(path)

    def is_file(self, path: str) -> bool:
        return path in self.files or path in VIRTUAL

    def is_dir(self, path: str) -> bool:
        if path in self.dirs or path == "/":
            return True
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.files)

    def listdir(self, path: str) -> list[str]:
        if not self.is_dir(path):
            raise FsError("No such file or directory" if not self.exists(path) else "Not a directory")
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0] for p in list(self.files) + list(self.dirs) if p.startswith(prefix)}
        names.discard("")
        return sorted(names)

    def glob(self, pattern: str) -> list[str]:
        candidates = set(self.files) | set(self.dirs)
        depth = pattern.count("/")
        return sorted(p for p in candidates if p.count("/") == depth and fnmatch.fnmatchcase(p, pattern))

    def owner_of(self, path: str) -> str:
        entry = self.files.get(path) or self.dirs.get(path) or {}
        return str(entry.get("owner", "root"))

    def mode_of(self, path: str) -> int:
        entry = self.files.get(path) or self.dirs.get(path) or {}
        return int(entry.get("mode", 0o755 if path in self.dirs else 0o644))

    def can_read(self, user: str, path: str) -> bool:
        if user == "root":
            return True
        if path.startswith("/etc/ssh/ssh_host_") and not path.endswith(".pub"):
            return False
        if any(path == p or path.startswith(p + "/") for p in ROOT_ONLY):
            return False
        home = self.home_of(user)
        if path.startswith("/home/") and home and not (path == home or path.startswith(home + "/")):
            return path.count("/") <= 2  # other users' homes are listable, not readable inside
        return True

    def can_write(self, user: str, path: str) -> bool:
        if user == "root" or path == "/dev/null":
            return True
        home = self.home_of(user)
        for base in (*WORLD_WRITABLE, home):
            if base and (path == base or path.startswith(base.rstrip("/") + "/")):
                return True
        return self.owner_of(path) == user and self.exists(path)

    def read_bytes(self, path: str, user: str = "root") -> bytes:
        if path == "/dev/null":
            return b""
        if path in VIRTUAL:
            if path == "/etc/shadow" and user != "root":
                raise FsError("Permission denied")
            return self._virtual(path).encode()
        if path not in self.files:
            raise FsError("Is a directory" if self.is_dir(path) else "No such file or directory")
        if not self.can_read(user, path):
            raise FsError("Permission denied")
        entry = self.files[path]
        if "link" in entry:
            target = self.norm(entry["link"], posixpath.dirname(path))
            if target == path:
                raise FsError("Too many levels of symbolic links")
            return self.read_bytes(target, user)
        if entry.get("encoding") == "base64":
            return base64.b64decode(entry["data"])
        return str(entry["data"]).encode()

    def read(self, path: str, user: str = "root") -> str:
        return self.read_bytes(path, user).decode(errors="replace")

    def write(self, path: str, data: str | bytes, *, user: str = "root", append: bool = False,
              mode: int | None = None) -> None:
        if path == "/dev/null":
            return
        if path in VIRTUAL:
            raise FsError("Permission denied" if user != "root" else "Operation not permitted")
        parent = posixpath.dirname(path)
        if not self.is_dir(parent):
            raise FsError("No such file or directory")
        if self.is_dir(path):
            raise FsError("Is a directory")
        if not self.can_write(user, path):
            raise FsError("Permission denied")
        raw = data.encode() if isinstance(data, str) else data
        if append and path in self.files:
            raw = self.read_bytes(path) + raw
        entry = self.files.get(path) or {"mode": mode if mode is not None else 0o644, "owner": user}
        try:
            entry["data"] = raw.decode()
            entry.pop("encoding", None)
        except UnicodeDecodeError:
            entry["data"] = base64.b64encode(raw).decode()
            entry["encoding"] = "base64"
        if mode is not None:
            entry["mode"] = mode
        self.files[path] = entry  # /etc/hostname too: the kernel's name changes only with hostname(1) or a reboot

    def mkdir(self, path: str, *, user: str = "root", parents: bool = False, mode: int = 0o755) -> None:
        if self.is_dir(path):
            if parents:
                return
            raise FsError("File exists")
        if path in self.files:
            raise FsError("File exists" if not parents else "Not a directory")
        parent = posixpath.dirname(path)
        if not self.is_dir(parent):
            if not parents:
                raise FsError("No such file or directory")
            self.mkdir(parent, user=user, parents=True, mode=mode)
        if not self.can_write(user, parent) and not self.can_write(user, path):
            raise FsError("Permission denied")
        self.dirs[path] = {"mode": mode, "owner": user}

    def remove(self, path: str, *, user: str = "root", recursive: bool = False) -> None:
        if path in VIRTUAL or path == "/":
            raise FsError("Operation not permitted" if path != "/" else "Device or resource busy")
        if not self.exists(path):
            raise FsError("No such file or directory")
        if not self.can_write(user, posixpath.dirname(path)) and not self.can_write(user, path):
            raise FsError("Permission denied")
        if path in self.files:
            del self.files[path]
            return
        if not recursive:
            raise FsError("Is a directory")
        prefix = path.rstrip("/") + "/"
        for p in [p for p in self.files if p.startswith(prefix)]:
            del self.files[p]
        for p in [p for p in self.dirs if p == path or p.startswith(prefix)]:
            del self.dirs[p]

    def rm_quiet(self, *patterns: str) -> None:
        """Delete files/dirs matching glob patterns, as root, ignoring missing ones (rm -rf)."""
        for pattern in patterns:
            targets = self.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
            for t in targets:
                if self.exists(t) and t not in VIRTUAL:
                    self.remove(t, recursive=True)

    def _virtual(self, path: str) -> str:
        if path == "/etc/passwd":
            return "".join(f"{n}:x:{u['uid']}:{u['gid']}:{u.get('gecos', '')}:{u['home']}:{u['shell']}\n"
                           for n, u in self._users_by_uid())
        if path == "/etc/shadow":
            return "".join(f"{n}:{u.get('password') or '*'}:19800:0:99999:7:::\n" for n, u in self._users_by_uid())
        if path == "/etc/group":
            groups: dict[str, list[str]] = {}
            for n, u in self._users_by_uid():
                for g in u.get("groups", []):
                    groups.setdefault(g, []).append(n)
            return "".join(f"{g}:x:{1000 + i}:{','.join(m)}\n" for i, (g, m) in enumerate(sorted(groups.items())))
        if path == "/proc/version":
            return f"Linux version {catalog.KERNEL} (debian-kernel@lists.debian.org) {catalog.KERNEL_BUILD}\n"
        return ""

    # accounts ---------------------------------------------------------------------
    @property
    def users(self) -> dict[str, dict[str, Any]]:
        users: dict[str, dict[str, Any]] = self.os["users"]
        return users

    def _users_by_uid(self) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self.users.items(), key=lambda kv: int(kv[1]["uid"]))

    def home_of(self, user: str) -> str | None:
        u = self.users.get(user)
        return str(u["home"]) if u else None

    def add_user(self, name: str, *, groups: list[str] | None = None, password: str | None = None,
                 shell: str = "/bin/bash", create_home: bool = True) -> dict[str, Any]:
        if name in self.users:
            raise FsError(f"user '{name}' already exists")
        uid = max([int(u["uid"]) for u in self.users.values() if 1000 <= int(u["uid"]) < 60000] + [999]) + 1
        home = f"/home/{name}"
        entry = {"uid": uid, "gid": uid, "home": home, "shell": shell, "groups": [name, *(groups or [])],
                 "password": hash_password(password) if password else "!"}
        self.users[name] = entry
        if create_home:
            self.dirs[home] = {"mode": 0o700, "owner": name}
            self.files[f"{home}/.bashrc"] = {"data": "# ~/.bashrc\n", "mode": 0o644, "owner": name}
        return entry

    def delete_user(self, name: str, *, remove_home: bool = True) -> bool:
        user = self.users.pop(name, None)
        if user is None:
            return False
        if remove_home:
            home = user["home"]
            if home.startswith("/home/") and self.exists(home):
                self.remove(home, recursive=True)
        return True

    def authorized_keys(self, user: str) -> list[str]:
        home = self.home_of(user)
        if not home:
            return []
        path = f"{home}/.ssh/authorized_keys"
        if path not in self.files:
            return []
        return [ln.strip() for ln in self.read(path).splitlines() if ln.strip() and not ln.startswith("#")]

    def password_auth_enabled(self) -> bool:
        text = ""
        for path in sorted(p for p in self.files if p.startswith("/etc/ssh/sshd_config.d/")):
            text += self.read(path)
        text += self.read("/etc/ssh/sshd_config") if "/etc/ssh/sshd_config" in self.files else ""
        for line in text.splitlines():  # sshd: the first value wins
            m = re.match(r"\s*PasswordAuthentication\s+(\w+)", line, re.IGNORECASE)
            if m:
                return m.group(1).lower() == "yes"
        return True

    def sudo_rule(self, user: str) -> str | None:
        """``nopasswd`` / ``password`` / None: what sudo would ask of this user."""
        if user == "root":
            return "nopasswd"
        u = self.users.get(user)
        if u is None:
            return None
        names = {user} | {"%" + g for g in u.get("groups", [])}
        best: str | None = None
        sources = ["/etc/sudoers", *sorted(p for p in self.files if p.startswith("/etc/sudoers.d/"))]
        for path in sources:
            if path not in self.files:
                continue
            for line in self.read(path).splitlines():
                parts = line.split()
                if not parts or parts[0].startswith("#") or parts[0] not in names:
                    continue
                if "NOPASSWD:" in line:
                    return "nopasswd"
                best = "password"
        return best

    # identity ---------------------------------------------------------------------
    def _static_hostname(self) -> str | None:
        if "/etc/hostname" in self.files:
            name = self.read("/etc/hostname").strip()
            return name or None
        return None

    def set_hostname(self, name: str) -> None:
        """hostnamectl set-hostname: the kernel's and the static name."""
        self.hostname = name
        self.write("/etc/hostname", name + "\n")

    def machine_id(self) -> str:
        return self.read("/etc/machine-id").strip() if "/etc/machine-id" in self.files else ""

    def host_key_fingerprints(self) -> dict[str, str]:
        out = {}
        for kind in HOST_KEY_TYPES:
            pub = f"/etc/ssh/ssh_host_{kind}_key.pub"
            if pub in self.files:
                blob = base64.b64decode(self.read(pub).split()[1])
                out[kind] = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return out

    def host_keys(self) -> list[str]:
        return [self.read(f"/etc/ssh/ssh_host_{k}_key") for k in HOST_KEY_TYPES
                if f"/etc/ssh/ssh_host_{k}_key" in self.files]

    def _write_host_keys(self) -> None:
        for kind, (private, public) in generate_host_keys().items():
            self.files[f"/etc/ssh/ssh_host_{kind}_key"] = {"data": private, "mode": 0o600, "owner": "root"}
            self.files[f"/etc/ssh/ssh_host_{kind}_key.pub"] = {"data": public + "\n", "mode": 0o644, "owner": "root"}

    # packages and services ---------------------------------------------------------
    @property
    def packages(self) -> dict[str, str]:
        packages: dict[str, str] = self.os["packages"]
        return packages

    @property
    def services(self) -> dict[str, dict[str, bool]]:
        services: dict[str, dict[str, bool]] = self.os["services"]
        return services

    def command_package(self, command: str) -> str | None:
        for name, pkg in catalog.DEBIAN.items():
            if command in pkg.commands:
                return name
        return None

    def install(self, names: list[str], serial: int) -> list[tuple[str, str]]:
        """Install packages (and dependencies) at the archive's ``serial``; returns (name, version) set up."""
        done = []
        for n in catalog.closure(names):
            if n in self.packages:
                continue
            version = catalog.archive_version(n, serial) or catalog.DEBIAN[n].version
            self.packages[n] = version
            for path, text in catalog.PACKAGE_FILES.get(n, {}).items():
                self.mkdir(posixpath.dirname(path), parents=True)
                self.files[path] = {"data": text, "mode": 0o644, "owner": "root"}
            for svc in catalog.DEBIAN[n].services:
                self.services[svc] = {"enabled": True, "active": True}
            done.append((n, version))
        return done

    def remove_packages(self, names: list[str], purge: bool = False) -> list[str]:
        """apt-get remove (configuration files stay) or purge (they go too)."""
        gone = []
        for n in names:
            if self.packages.pop(n, None) is not None:
                gone.append(n)
                if purge:
                    self.rm_quiet(*catalog.PACKAGE_FILES.get(n, {}))
                for svc in catalog.DEBIAN[n].services if n in catalog.DEBIAN else ():
                    self.services.pop(svc, None)
        return gone

    def upgradable(self, serial: int) -> list[tuple[str, str, str]]:
        out = []
        for n, current in sorted(self.packages.items()):
            new = catalog.archive_version(n, serial)
            if new and new != current:
                out.append((n, current, new))
        return out

    # lifecycle --------------------------------------------------------------------
    def boot(self) -> list[str]:
        """What systemd and the early boot do on every boot; returns log lines."""
        log = []
        if not self.machine_id():
            self.write("/etc/machine-id", uuid.uuid4().hex + "\n", mode=0o444)
            log.append("systemd: initializing machine ID from random generator")
        if not any(f"/etc/ssh/ssh_host_{k}_key" in self.files for k in HOST_KEY_TYPES):
            self._write_host_keys()
            log.append("sshd-keygen: generated new SSH host keys")
        if "/etc/resolv.conf" not in self.files:
            self.write("/etc/resolv.conf", "nameserver 168.63.129.16\nsearch reddog.microsoft.com\n")
            log.append("dhclient: wrote /etc/resolv.conf from the DHCP lease")
        if "dbus" in self.packages and DBUS_MACHINE_ID not in self.files:  # dbus's tmpfiles.d rule (L)
            self.mkdir(posixpath.dirname(DBUS_MACHINE_ID), parents=True)
            self.files[DBUS_MACHINE_ID] = {"link": "/etc/machine-id", "data": "", "mode": 0o777, "owner": "root"}
        self.hostname = self._static_hostname() or "localhost"
        for svc in self.services.values():
            svc["active"] = bool(svc.get("enabled"))
        return log

    def first_boot(self, prov: Provisioning) -> list[str]:
        """cloud-init's per-instance modules for a generalized image: the image becomes this VM."""
        log = [f"cloud-init: new instance {prov.instance_id}: running per-instance modules"]
        if self.cached_instance_id() != prov.instance_id:
            for kind in HOST_KEY_TYPES:  # ssh_deletekeys: true
                self.files.pop(f"/etc/ssh/ssh_host_{kind}_key", None)
                self.files.pop(f"/etc/ssh/ssh_host_{kind}_key.pub", None)
            self._write_host_keys()
            log.append("cloud-init: ssh: regenerated host keys")
        self.set_hostname(prov.hostname)
        self.write("/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {prov.hostname}\n::1 localhost ip6-localhost\n")
        log.append(f"cloud-init: set hostname to {prov.hostname}")
        if prov.username not in self.users:
            self.add_user(prov.username, groups=list(DEFAULT_GROUPS))
            log.append(f"cloud-init: created user {prov.username}")
        user = self.users[prov.username]
        if prov.password:
            user["password"] = hash_password(prov.password)
        home = user["home"]
        self.mkdir(f"{home}/.ssh", parents=True, mode=0o700)
        self.dirs[f"{home}/.ssh"]["owner"] = prov.username
        keys = "".join(k.strip() + "\n" for k in prov.ssh_keys)
        self.write(f"{home}/.ssh/authorized_keys", keys, mode=0o600)
        self.files[f"{home}/.ssh/authorized_keys"]["owner"] = prov.username
        self.mkdir("/etc/sudoers.d", parents=True, mode=0o750)  # cloud-init makes the folders it writes into
        self.mkdir("/etc/ssh/sshd_config.d", parents=True)
        self.write("/etc/sudoers.d/90-cloud-init-users",
                   f"# Created by cloud-init v. 22.4.2 on simulated boot\n\n# User rules for {prov.username}\n"
                   f"{prov.username} ALL=(ALL) NOPASSWD:ALL\n", mode=0o440)
        self.write("/etc/ssh/sshd_config.d/50-cloud-init.conf",
                   f"PasswordAuthentication {'yes' if prov.password else 'no'}\n")
        self.mkdir("/var/lib/waagent", parents=True, mode=0o700)
        self.write("/var/lib/waagent/ovf-env.xml", ovf_env(prov), mode=0o600)
        self.mkdir(f"/var/lib/cloud/instances/{prov.instance_id}", parents=True)
        self.mkdir("/var/lib/cloud/data", parents=True)
        self.write("/var/lib/cloud/data/instance-id", prov.instance_id + "\n")
        if prov.custom_data is not None:
            self.write("/var/lib/waagent/CustomData", prov.custom_data, mode=0o600)
            self.write(f"/var/lib/cloud/instances/{prov.instance_id}/user-data.txt", prov.custom_data, mode=0o600)
        self.write(f"/var/lib/cloud/instances/{prov.instance_id}/boot-finished", "simulated\n")
        self.mkdir("/var/log", parents=True)
        self.write("/var/log/cloud-init.log", "\n".join(log) + "\n", append=True)
        self.os.setdefault("history", []).append({"event": "provisioned", "hostname": prov.hostname,
                                                  "user": prov.username, "instance": prov.instance_id})
        return log

    def cached_instance_id(self) -> str | None:
        path = "/var/lib/cloud/data/instance-id"
        return self.read(path).strip() if path in self.files else None

    def cloud_init_status(self) -> str:
        iid = self.cached_instance_id()
        if iid and f"/var/lib/cloud/instances/{iid}/boot-finished" in self.files:
            return "done"
        return "disabled" if iid is None and not self.is_dir("/var/lib/cloud/instances") else "done"

    def cloud_init_clean(self, *, logs: bool = False, machine_id: bool = False, seed: bool = False) -> None:
        for p in self.listdir("/var/lib/cloud") if self.is_dir("/var/lib/cloud") else []:
            if p == "seed" and not seed:
                continue
            self.rm_quiet(f"/var/lib/cloud/{p}")
        if logs:
            self.rm_quiet("/var/log/cloud-init.log", "/var/log/cloud-init-output.log")
        if machine_id and "/etc/machine-id" in self.files:
            self.write("/etc/machine-id", "")

    def provisioned_user(self) -> str | None:
        """The user ovf-env.xml names: the only account ``waagent -deprovision+user`` deletes."""
        ovf = "/var/lib/waagent/ovf-env.xml"
        m = re.search(r"<UserName>([^<]+)</UserName>", self.read(ovf)) if ovf in self.files else None
        return m.group(1) if m else None

    def deprovision_warnings(self, *, deluser: bool) -> list[str]:
        """What waagent prints before acting (WALinuxAgent's DeprovisionHandler.setup, in its order)."""
        warnings = ["WARNING! The waagent service will be stopped.",
                    "WARNING! All SSH host key pairs will be deleted.",
                    "WARNING! Cached DHCP leases will be deleted.",
                    "WARNING! root password will be disabled. You will not be able to login as root.",
                    "WARNING! /etc/resolv.conf will be deleted."]
        if deluser:
            victim = self.provisioned_user()
            if victim is None:
                warnings += ["WARNING! ovf-env.xml is not found.", "WARNING! Skip delete user."]
            else:
                warnings.append(f"WARNING! {victim} account and entire home directory will be deleted.")
        return warnings

    def deprovision(self, *, deluser: bool) -> list[str]:
        """``waagent -deprovision[+user] -force``: host keys, DHCP leases, hostname, root password, the agent's
        state (ovf-env.xml included), resolv.conf and, with +user, the provisioned user and its home.

        Like the real agent it leaves /etc/machine-id, /var/lib/cloud and cloud-init's sudoers rule.
        """
        warnings = self.deprovision_warnings(deluser=deluser)
        victim = self.provisioned_user() if deluser else None
        if "walinuxagent" in self.services:
            self.services["walinuxagent"]["active"] = False
        self.rm_quiet("/etc/ssh/ssh_host_*key*")
        self.rm_quiet("/var/lib/dhclient", "/var/lib/dhcpcd", "/var/lib/dhcp")
        self.set_hostname("localhost.localdomain")
        if "root" in self.users:
            self.users["root"]["password"] = "*"
        self.rm_quiet("/var/lib/waagent", "/var/log/azure", "/root/.bash_history", "/var/log/waagent.log",
                      "/etc/resolv.conf")
        if victim is not None and victim != "root":
            self.delete_user(victim, remove_home=True)
            path = "/etc/sudoers.d/waagent"
            if path in self.files:
                kept = [ln for ln in self.read(path).splitlines() if not ln.startswith(victim + " ")]
                self.write(path, "".join(k + "\n" for k in kept))
        self.os.setdefault("history", []).append({"event": "deprovisioned", "user": victim})
        self.os["waagent_deprovisioned"] = True
        return warnings


def ovf_env(prov: Provisioning) -> str:
    keys = "".join(f"<PublicKey><Path>/home/{prov.username}/.ssh/authorized_keys</Path><Value>{k.strip()}</Value>"
                   "</PublicKey>" for k in prov.ssh_keys)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
        'xmlns:wa="http://schemas.microsoft.com/windowsazure">\n'
        "<!-- written by the Local Azure simulated guest's cloud-init -->\n"
        "<wa:ProvisioningSection><wa:Version>1.0</wa:Version>"
        '<LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">'
        "<ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>"
        f"<HostName>{prov.hostname}</HostName><UserName>{prov.username}</UserName>"
        + ("<UserPassword>REDACTED</UserPassword>" if prov.password else "")
        + f"<DisableSshPasswordAuthentication>{'false' if prov.password else 'true'}"
        f"</DisableSshPasswordAuthentication><SSH><PublicKeys>{keys}</PublicKeys></SSH>"
        "</LinuxProvisioningConfigurationSet></wa:ProvisioningSection>\n</Environment>\n"
    )
