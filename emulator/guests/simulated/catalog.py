"""What the simulated guests' package archives hold, and how they change month by month.

The archive is a pure function of a *serial*: the number of months since Debian 12's release
(June 2023). A package either is or is not updated in a given month (decided by a hash, so every
run and every machine agrees), and its version at serial ``s`` carries one ``+deb12uN`` bump per
update so far. Images built in the same month therefore have identical manifests, and a monthly
patch rebuild really does pull newer versions, without any network.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass, field

EPOCH = (2023, 6)  # bookworm was released in June 2023: serial 0
MIRROR = "http://debian-archive.trafficmanager.net/debian"  # what Azure's Debian images use


@dataclass(frozen=True)
class Package:
    version: str  # the version at serial 0
    depends: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # systemd units the package installs, enabled and started
    commands: tuple[str, ...] = ()  # programs it puts on PATH
    priority: str = "optional"


@dataclass
class Release:
    """os-release facts of a simulated distribution."""

    pretty: str
    fields: dict[str, str] = field(default_factory=dict)


def serial_of(when: datetime.date | datetime.datetime) -> int:
    return max(0, (when.year - EPOCH[0]) * 12 + when.month - EPOCH[1])


def serial_now(now: float) -> int:
    return serial_of(datetime.datetime.fromtimestamp(now, datetime.UTC))


def serial_from_version(version: str | None) -> int | None:
    """A Marketplace version such as ``0.20240603.1234`` or ``20348.2461.240510`` names its build date."""
    if not version:
        return None
    m = re.search(r"(?:^|\.)(20\d{2})(\d{2})(\d{2})(?:\.|$)", version)
    if m:
        return serial_of(datetime.date(int(m.group(1)), int(m.group(2)), 1))
    m = re.search(r"\.(\d{2})(\d{2})(\d{2})$", version)  # Windows: build.ubr.yymmdd
    if m and 1 <= int(m.group(2)) <= 12:
        return serial_of(datetime.date(2000 + int(m.group(1)), int(m.group(2)), 1))
    return None


def _updated(name: str, month: int) -> bool:
    digest = hashlib.sha256(f"{name}:{month}".encode()).digest()
    return digest[0] % 7 == 0


def source_of(name: str) -> str:
    """Binary packages built from one source package are updated together, as in the archive."""
    return SOURCES.get(name, name)


def updates_until(name: str, serial: int) -> int:
    source = source_of(name)
    return sum(1 for m in range(1, serial + 1) if _updated(source, m))


def bump(version: str, count: int) -> str:
    if count <= 0:
        return version
    m = re.search(r"\+deb12u(\d+)$", version)
    if m:
        return version[: m.start()] + f"+deb12u{int(m.group(1)) + count}"
    return f"{version}+deb12u{count}"


def archive_version(name: str, serial: int) -> str | None:
    pkg = DEBIAN.get(name)
    if pkg is None:
        return None
    return bump(pkg.version, updates_until(name, serial))


def closure(names: list[str]) -> list[str]:
    """The packages to install for ``names``, dependencies first, each once."""
    out: list[str] = []

    def visit(n: str) -> None:
        if n in out:
            return
        for dep in DEBIAN[n].depends:
            visit(dep)
        out.append(n)

    for n in names:
        visit(n)
    return out


def _p(version: str, *depends: str, services: tuple[str, ...] = (), commands: tuple[str, ...] = (),
       priority: str = "optional") -> Package:
    return Package(version, tuple(depends), services, commands, priority)


# Versions as in bookworm's point releases. The base set is what a Debian 12 Azure image ships.
DEBIAN: dict[str, Package] = {
    "adduser": _p("3.134", priority="important", commands=("adduser", "deluser")),
    "apt": _p("2.6.1", priority="important", commands=("apt", "apt-get", "apt-cache")),
    "apt-utils": _p("2.6.1"),
    "base-files": _p("12.4+deb12u5", priority="required"),
    "base-passwd": _p("3.6.1", priority="required"),
    "bash": _p("5.2.15-2+b2", priority="required", commands=("bash", "sh")),
    "bsdutils": _p("1:2.38.1-5+b1", priority="required"),
    "ca-certificates": _p("20230311"),
    "chrony": _p("4.3-2+deb12u1", services=("chrony",), commands=("chronyc",)),
    "cloud-init": _p("22.4.2-1", services=("cloud-init", "cloud-init-local", "cloud-config", "cloud-final"),
                     commands=("cloud-init",)),
    "coreutils": _p("9.1-1", priority="required"),
    "cron": _p("3.0pl1-162", services=("cron",), priority="important"),
    "curl": _p("7.88.1-10+deb12u5", "libcurl4", commands=("curl",)),
    "dash": _p("0.5.12-2", priority="required"),
    "dbus": _p("1.14.10-1~deb12u1", services=("dbus",)),
    "debconf": _p("1.5.82", priority="required"),
    "debian-archive-keyring": _p("2023.3+deb12u1", priority="important"),
    "debianutils": _p("5.7-0.5~deb12u1", priority="required"),
    "diffutils": _p("1:3.8-4", priority="required"),
    "dpkg": _p("1.21.22", priority="required", commands=("dpkg", "dpkg-query")),
    "e2fsprogs": _p("1.47.0-2", priority="required"),
    "findutils": _p("4.9.0-4", priority="required"),
    "gpgv": _p("2.2.40-1.1", priority="important"),
    "grep": _p("3.8-5", priority="required"),
    "gzip": _p("1.12-1", priority="required"),
    "hostname": _p("3.23+nmu1", priority="required"),
    "ifupdown": _p("0.8.41", priority="important"),
    "init-system-helpers": _p("1.65.2", priority="required"),
    "initramfs-tools": _p("0.142"),
    "iproute2": _p("6.1.0-3", priority="important", commands=("ip", "ss")),
    "isc-dhcp-client": _p("4.4.3-P1-2", priority="important"),
    "less": _p("590-2"),
    "libc-bin": _p("2.36-9+deb12u4", priority="required"),
    "libc6": _p("2.36-9+deb12u4", priority="required"),
    "libcurl4": _p("7.88.1-10+deb12u5"),
    "libssl3": _p("3.0.11-1~deb12u2", priority="important"),
    "libsystemd0": _p("252.22-1~deb12u1", priority="important"),
    "linux-image-6.1.0-18-cloud-amd64": _p("6.1.76-1"),
    "linux-image-cloud-amd64": _p("6.1.76-1", "linux-image-6.1.0-18-cloud-amd64"),
    "login": _p("1:4.13+dfsg1-1+b1", priority="required"),
    "logrotate": _p("3.21.0-1", priority="important"),
    "mawk": _p("1.3.4.20200120-3.1", priority="required"),
    "mount": _p("2.38.1-5+b1", priority="required"),
    "nano": _p("7.2-1", commands=("nano",)),
    "ncurses-base": _p("6.4-4", priority="required"),
    "netbase": _p("6.4"),
    "openssh-client": _p("1:9.2p1-2+deb12u2", commands=("ssh", "scp", "ssh-keygen")),
    "openssh-server": _p("1:9.2p1-2+deb12u2", "openssh-client", "openssh-sftp-server", services=("ssh",),
                         commands=("sshd",)),
    "openssh-sftp-server": _p("1:9.2p1-2+deb12u2"),
    "openssl": _p("3.0.11-1~deb12u2", "libssl3", commands=("openssl",)),
    "passwd": _p("1:4.13+dfsg1-1+b1", priority="required"),
    "perl-base": _p("5.36.0-7+deb12u1", priority="required"),
    "procps": _p("2:4.0.2-3", priority="important", commands=("ps", "free", "uptime")),
    "python3": _p("3.11.2-1+b1", "python3.11", commands=("python3",)),
    "python3.11": _p("3.11.2-6"),
    "rsyslog": _p("8.2302.0-1", services=("rsyslog",), priority="important"),
    "sed": _p("4.9-1", priority="required"),
    "sudo": _p("1.9.13p3-1+deb12u1", commands=("sudo",)),
    "systemd": _p("252.22-1~deb12u1", "libsystemd0", services=("systemd-journald", "systemd-networkd"),
                  priority="important", commands=("systemctl", "journalctl", "hostnamectl")),
    "systemd-sysv": _p("252.22-1~deb12u1", "systemd", priority="important"),
    "sysvinit-utils": _p("3.06-4", priority="required"),
    "tar": _p("1.34+dfsg-1.2+deb12u1", priority="required"),
    "tzdata": _p("2024a-0+deb12u1", priority="required"),
    "udev": _p("252.22-1~deb12u1", priority="important"),
    "util-linux": _p("2.38.1-5+b1", priority="required"),
    "waagent": _p("2.8.0.11-4", "python3", services=("walinuxagent",), commands=("waagent",)),
    "zlib1g": _p("1:1.2.13.dfsg-1", priority="required"),
    "zstd": _p("1.5.4+dfsg2-5"),
    # available from the archive, not installed in the base image
    "apache2": _p("2.4.59-1~deb12u1", "apache2-bin", "apache2-data", "apache2-utils", services=("apache2",),
                  commands=("apache2ctl",)),
    "apache2-bin": _p("2.4.59-1~deb12u1"),
    "apache2-data": _p("2.4.59-1~deb12u1"),
    "apache2-utils": _p("2.4.59-1~deb12u1"),
    "apt-transport-https": _p("2.6.1"),
    "auditd": _p("1:3.0.9-1", services=("auditd",), commands=("auditctl",)),
    "containerd": _p("1.6.20~ds1-1+b1", "runc", services=("containerd",)),
    "docker.io": _p("20.10.24+dfsg1-1+b3", "containerd", "iptables", services=("docker",), commands=("docker",)),
    "fail2ban": _p("1.0.2-2", "python3", services=("fail2ban",), commands=("fail2ban-client",)),
    "git": _p("1:2.39.2-1.1", "git-man", "liberror-perl", commands=("git",)),
    "git-man": _p("1:2.39.2-1.1"),
    "gnupg": _p("2.2.40-1.1", commands=("gpg",)),
    "htop": _p("3.2.2-2", commands=("htop",)),
    "iptables": _p("1.8.9-2", commands=("iptables",)),
    "jq": _p("1.6-2.1", "libjq1", commands=("jq",)),
    "libjq1": _p("1.6-2.1", "libonig5"),
    "libonig5": _p("6.9.8-1"),
    "liberror-perl": _p("0.17029-2"),
    "lsb-release": _p("12.0-1", commands=("lsb_release",)),
    "net-tools": _p("2.10-0.1", commands=("ifconfig", "netstat")),
    "nftables": _p("1.0.6-2+deb12u2", commands=("nft",)),
    "nginx": _p("1.22.1-9", "nginx-common", services=("nginx",), commands=("nginx",)),
    "nginx-common": _p("1.22.1-9"),
    "nodejs": _p("18.19.0+dfsg-6~deb12u1", commands=("node",)),
    "postgresql-15": _p("15.6-0+deb12u1", "postgresql-common", "postgresql-client-15", services=("postgresql",)),
    "postgresql-client-15": _p("15.6-0+deb12u1", commands=("psql",)),
    "postgresql-common": _p("248"),
    "python3-pip": _p("23.0.1+dfsg-1", "python3", commands=("pip3", "pip")),
    "redis-server": _p("5:7.0.15-1~deb12u1", services=("redis-server",), commands=("redis-cli",)),
    "rsync": _p("3.2.7-1", commands=("rsync",)),
    "runc": _p("1.1.5+ds1-1+deb12u1"),
    "strace": _p("6.1-0.1", commands=("strace",)),
    "tcpdump": _p("4.99.3-1", commands=("tcpdump",)),
    "tmux": _p("3.3a-3", commands=("tmux",)),
    "ufw": _p("0.36.2-1", services=("ufw",), commands=("ufw",)),
    "unattended-upgrades": _p("2.9.1+nmu3", "python3", services=("unattended-upgrades",),
                              commands=("unattended-upgrade",)),
    "unzip": _p("6.0-28", commands=("unzip",)),
    "vim": _p("2:9.0.1378-2", commands=("vim",)),
    "wget": _p("1.21.3-1+b2", commands=("wget",)),
    "zip": _p("3.0-13", commands=("zip",)),
}

SOURCES: dict[str, str] = {
    "apt-utils": "apt", "apt-transport-https": "apt", "bsdutils": "util-linux", "mount": "util-linux",
    "libc-bin": "glibc", "libc6": "glibc", "libcurl4": "curl", "libssl3": "openssl", "libsystemd0": "systemd",
    "systemd-sysv": "systemd", "udev": "systemd", "linux-image-6.1.0-18-cloud-amd64": "linux",
    "linux-image-cloud-amd64": "linux", "login": "shadow", "passwd": "shadow", "openssh-client": "openssh",
    "openssh-server": "openssh", "openssh-sftp-server": "openssh", "python3": "python3-defaults",
    "apache2-bin": "apache2", "apache2-data": "apache2", "apache2-utils": "apache2", "git-man": "git",
    "libjq1": "jq", "nginx-common": "nginx", "postgresql-client-15": "postgresql-15",
}

DEBIAN_BASE = [
    "adduser", "apt", "apt-utils", "base-files", "base-passwd", "bash", "bsdutils", "ca-certificates", "chrony",
    "cloud-init", "coreutils", "cron", "curl", "dash", "dbus", "debconf", "debian-archive-keyring", "debianutils",
    "diffutils", "dpkg", "e2fsprogs", "findutils", "gpgv", "grep", "gzip", "hostname", "ifupdown",
    "init-system-helpers", "initramfs-tools", "iproute2", "isc-dhcp-client", "less", "libc-bin", "libc6",
    "libcurl4", "libssl3", "libsystemd0", "linux-image-cloud-amd64", "login", "logrotate", "mawk", "mount", "nano",
    "ncurses-base", "netbase", "openssh-server", "openssl", "passwd", "perl-base", "procps", "python3",
    "rsyslog", "sed", "sudo", "systemd", "systemd-sysv", "sysvinit-utils", "tar", "tzdata", "udev", "util-linux",
    "waagent", "zlib1g", "zstd",
]

DEBIAN_12 = Release(
    pretty="Debian GNU/Linux 12 (bookworm)",
    fields={
        "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        "NAME": "Debian GNU/Linux",
        "VERSION_ID": "12",
        "VERSION": "12 (bookworm)",
        "VERSION_CODENAME": "bookworm",
        "ID": "debian",
        "HOME_URL": "https://www.debian.org/",
        "SUPPORT_URL": "https://www.debian.org/support",
        "BUG_REPORT_URL": "https://bugs.debian.org/",
    },
)
KERNEL = "6.1.0-18-cloud-amd64"
KERNEL_BUILD = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"


# Windows --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowsRelease:
    caption: str
    build: int
    ubr: int  # update build revision at serial 0
    features: tuple[str, ...]  # installed in the image


WINDOWS: dict[str, WindowsRelease] = {
    "windows-server-2022": WindowsRelease(
        "Microsoft Windows Server 2022 Datacenter", 20348, 1787,
        ("FileAndStorage-Services", "Storage-Services", "NET-Framework-45-Features", "NET-Framework-45-Core",
         "PowerShellRoot", "PowerShell", "WoW64-Support", "XPS-Viewer", "Windows-Defender", "System-DataArchiver"),
    ),
    "windows-server-2019": WindowsRelease(
        "Microsoft Windows Server 2019 Datacenter", 17763, 4499,
        ("FileAndStorage-Services", "Storage-Services", "NET-Framework-45-Features", "NET-Framework-45-Core",
         "PowerShellRoot", "PowerShell", "WoW64-Support", "Windows-Defender", "System-DataArchiver"),
    ),
}

# Features Install-WindowsFeature knows, with display names.
WINDOWS_FEATURES: dict[str, str] = {
    "Web-Server": "Web Server (IIS)",
    "Web-Mgmt-Tools": "Management Tools",
    "Web-Mgmt-Console": "IIS Management Console",
    "Web-Asp-Net45": "ASP.NET 4.8",
    "NET-Framework-45-Features": ".NET Framework 4.8 Features",
    "NET-Framework-45-Core": ".NET Framework 4.8",
    "Telnet-Client": "Telnet Client",
    "RSAT-AD-PowerShell": "Active Directory module for Windows PowerShell",
    "Containers": "Containers",
    "Hyper-V-PowerShell": "Hyper-V Module for Windows PowerShell",
    "SNMP-Service": "SNMP Service",
    "Windows-Server-Backup": "Windows Server Backup",
    "FileAndStorage-Services": "File and Storage Services",
    "Storage-Services": "Storage Services",
    "PowerShellRoot": "Windows PowerShell",
    "PowerShell": "Windows PowerShell 5.1",
    "WoW64-Support": "WoW64 Support",
    "XPS-Viewer": "XPS Viewer",
    "Windows-Defender": "Microsoft Defender Antivirus",
    "System-DataArchiver": "System Data Archiver",
    "DNS": "DNS Server",
    "DHCP": "DHCP Server",
    "FS-FileServer": "File Server",
}
FEATURE_DEPENDS: dict[str, tuple[str, ...]] = {
    "Web-Mgmt-Console": ("Web-Mgmt-Tools",),
    "Web-Asp-Net45": ("Web-Server", "NET-Framework-45-Features"),
}
FEATURE_SERVICES: dict[str, tuple[str, str]] = {"Web-Server": ("W3SVC", "World Wide Web Publishing Service")}


def cumulative_update(release: str, serial: int) -> dict[str, str]:
    """The month's latest cumulative update (LCU) for a Windows release, as Get-HotFix shows it."""
    rel = WINDOWS[release]
    kb = 5030000 + serial * 97 + (11 if rel.build == 20348 else 3)
    month = datetime.date(EPOCH[0] + (EPOCH[1] - 1 + serial) // 12, (EPOCH[1] - 1 + serial) % 12 + 1, 14)
    return {"HotFixID": f"KB{kb}", "Description": "Security Update", "InstalledOn": month.strftime("%m/%d/%Y"),
            "serial": str(serial)}


def servicing_stack(release: str, serial: int) -> dict[str, str]:
    kb = 5029000 + serial * 41 + (5 if WINDOWS[release].build == 20348 else 1)
    month = datetime.date(EPOCH[0] + (EPOCH[1] - 1 + serial) // 12, (EPOCH[1] - 1 + serial) % 12 + 1, 14)
    return {"HotFixID": f"KB{kb}", "Description": "Update", "InstalledOn": month.strftime("%m/%d/%Y"),
            "serial": str(serial)}


def windows_ubr(release: str, serial: int) -> int:
    return WINDOWS[release].ubr + serial * 41


NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.</p>
</body>
</html>
"""
APACHE_PAGE = "<html><head><title>Apache2 Debian Default Page: It works</title></head><body>It works!</body></html>\n"

# Files a package puts on disk (the ones scripts and smoke checks look at).
PACKAGE_FILES: dict[str, dict[str, str]] = {
    "nginx-common": {"/etc/nginx/nginx.conf": "user www-data;\nworker_processes auto;\n"
                     "http {\n\tinclude /etc/nginx/sites-enabled/*;\n}\n",
                     "/etc/nginx/sites-available/default": "server {\n\tlisten 80 default_server;\n"
                     "\troot /var/www/html;\n}\n"},
    "nginx": {"/var/www/html/index.nginx-debian.html": NGINX_PAGE},
    "apache2": {"/etc/apache2/apache2.conf": "ServerRoot \"/etc/apache2\"\n", "/var/www/html/index.html": APACHE_PAGE},
    "unattended-upgrades": {"/etc/apt/apt.conf.d/50unattended-upgrades":
                            'Unattended-Upgrade::Origins-Pattern {\n        "origin=Debian,codename=${distro_codename},'
                            'label=Debian-Security";\n};\n'},
    "fail2ban": {"/etc/fail2ban/jail.conf": "[DEFAULT]\nbantime = 10m\n"},
    "auditd": {"/etc/audit/auditd.conf": "log_file = /var/log/audit/audit.log\n"},
    "chrony": {"/etc/chrony/chrony.conf": "refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0\n"},
}
