"""Resolve the package set an image build would install, cheaply and without a chroot.

A private apt directory (its own sources, lists and an empty dpkg status) is refreshed with
``apt-get update`` (at most every LISTS_MAX_AGE seconds) and asked to *simulate*
installing minbase (Essential:yes, Priority:required, apt) plus the requested packages. The resulting
name -> version set keys the image cache, so a new security update means a new image.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from emulator.guests.qemu.tools import tool

DEBIAN_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Package lists younger than this are not refreshed: repeated builds in one session stay fast,
# while a Debian update (the mirrors publish every 6 h, security as needed) is seen within minutes.
LISTS_MAX_AGE = 300.0

_INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) ")


def sources(suite: str) -> list[str]:
    """One-line apt sources for ``suite`` patched from its updates and security suites."""
    return [
        f"deb [signed-by={KEYRING}] {DEBIAN_MIRROR} {suite} main",
        f"deb [signed-by={KEYRING}] {DEBIAN_MIRROR} {suite}-updates main",
        f"deb [signed-by={KEYRING}] {SECURITY_MIRROR} {suite}-security main",
    ]


@dataclass(frozen=True)
class Resolution:
    manifest: dict[str, str]  # package -> version
    snapshot_date: str  # YYYYMMDD of the newest InRelease among the suites


def _apt_env(root: Path, suite: str) -> dict[str, str]:
    for sub in (
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").touch()
    (root / "etc/apt/sources.list").write_text("\n".join(sources(suite)) + "\n")
    conf = root / "apt.conf"
    conf.write_text(
        f'Dir "{root}/";\n'
        f'Dir::State::status "{root}/var/lib/dpkg/status";\n'
        'APT::Architecture "amd64";\nAPT::Architectures { "amd64"; };\n'
        'APT::Install-Recommends "false";\nAcquire::Languages "none";\n'
        'Acquire::GzipIndexes "false";\nDebug::NoLocking "true";\n'
    )
    return {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C.UTF-8"}


def _apt(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([tool("apt-get"), "-q", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get {' '.join(args[:2])} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def minbase_packages(lists: Path, suite: str) -> list[str]:
    """Essential:yes and Priority:required packages of ``suite``: mmdebstrap's minbase (less apt)."""
    names: set[str] = set()
    for path in lists.glob(f"*_dists_{suite}_main_binary-amd64_Packages"):
        data = path.read_bytes()
        for match in re.finditer(rb"\n(?:Essential: yes|Priority: required)\n", data):
            start = data.rfind(b"\n\nPackage: ", 0, match.start())
            start = 0 if start < 0 else start + 2
            names.add(data[start + 9 : data.index(b"\n", start)].decode().strip())
    if not names:
        raise RuntimeError(f"no Essential packages found in the {suite} index under {lists}")
    return sorted(names)


def snapshot_date(lists: Path) -> str:
    """YYYYMMDD of the newest archive snapshot (InRelease Date) the lists come from."""
    dates = []
    for path in lists.glob("*_InRelease"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Date: "):
                dates.append(email.utils.parsedate_to_datetime(line[6:].strip()))
                break
    if not dates:
        raise RuntimeError(f"no InRelease files under {lists}")
    return max(dates).strftime("%Y%m%d")


def parse_simulation(output: str) -> dict[str, str]:
    """``apt-get -s install`` output -> {package: version}."""
    found = {}
    for line in output.splitlines():
        m = _INST.match(line)
        if m:
            found[m.group(1).split(":")[0]] = m.group(2)
    return found


def resolve(apt_root: Path, suite: str, packages: list[str], *, max_age: float = LISTS_MAX_AGE) -> Resolution:
    """Refresh the private apt lists (at most every ``max_age`` s) and resolve minbase + ``packages``."""
    env = _apt_env(apt_root, suite)
    stamp = apt_root / "updated"
    if not stamp.exists() or time.time() - stamp.stat().st_mtime > max_age:
        _apt(env, "update")
        stamp.touch()
    lists = apt_root / "var/lib/apt/lists"
    wanted = sorted({*minbase_packages(lists, suite), "apt", *packages})
    # Same lists, same request: same answer (saves the ~2 s solver run on repeated calls).
    state = hashlib.sha256(
        "\n".join(
            [*wanted, *(f"{p.name} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in sorted(lists.glob("*_*")))]
        ).encode()
    ).hexdigest()
    memo = apt_root / "resolution.json"
    if memo.exists() and (saved := json.loads(memo.read_text())).get("state") == state:
        return Resolution(manifest=saved["manifest"], snapshot_date=saved["snapshot_date"])
    manifest = parse_simulation(_apt(env, "-s", "install", *wanted))
    missing = [p for p in packages if p not in manifest]
    if missing:
        raise RuntimeError(f"apt did not resolve {missing} from {suite}")
    result = Resolution(manifest=dict(sorted(manifest.items())), snapshot_date=snapshot_date(lists))
    memo.write_text(json.dumps({"state": state, **asdict(result)}))
    return result


def manifest_digest(manifest: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{k}={v}\n" for k, v in sorted(manifest.items())).encode()).hexdigest()
