"""Commands the factory runs inside guests, built in one place (pure: no Airflow, no I/O).

Generalizing a Linux guest is one privileged command because `waagent -deprovision+user`
deletes the user whose sudo rights the command runs under. It first waits for first-boot
cloud-init to finish (a build can outpace it). waagent leaves three things a clone
must not inherit, so the command also removes them before powering off:
- /etc/machine-id (systemd regenerates an empty one at first boot: clones get their own id),
- cloud-init's instance state and logs (the clone provisions as a new instance),
- the D-Bus copy of the machine id.
"""

from __future__ import annotations

import re
import shlex

# First-boot cloud-init may still be running when SSH answers; cleaning its state under it fails
# ("Directory not empty") and the guest never powers off. Its own outcome is not ours to judge here.
LINUX_WAIT_FOR_CLOUD_INIT = "{ cloud-init status --wait >/dev/null 2>&1 || true; }"

LINUX_GENERALIZE_STEPS: tuple[str, ...] = (
    LINUX_WAIT_FOR_CLOUD_INIT,
    "waagent -deprovision+user -force",
    "cloud-init clean --logs",
    "truncate -s 0 /etc/machine-id",
    "rm -f /var/lib/dbus/machine-id",
    "sync",
    "shutdown -h now",
)


def linux_generalize_command() -> str:
    """The one command that deprovisions a Linux build VM and powers it off (run as the build user)."""
    return "sudo sh -c " + shlex.quote(" && ".join(LINUX_GENERALIZE_STEPS))


def linux_shutdown_command() -> str:
    """Power off a specialized Linux build VM without deprovisioning it."""
    return "sudo sh -c " + shlex.quote("sync && shutdown -h now")


# Pending package updates (changes.py): refresh apt's lists, then ask what a full upgrade would install.
LINUX_APT_UPDATE = "apt-get update"
LINUX_SIMULATE_UPGRADE = "apt-get -s dist-upgrade"
_APT_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)")
_APT_REMV = re.compile(r"^Remv (\S+)")
# apt-get update exits 0 when a mirror cannot be reached ("W: Failed to fetch …", old or no lists kept)
_APT_UPDATE_FAILED = re.compile(r"^(Err:\S*|E:|W: Failed to fetch|W: Some index files failed)", re.MULTILINE)


def apt_update_failure(exit_code: int, stdout: str, stderr: str) -> str | None:
    """Why ``apt-get update`` did not refresh every list (its first error line), or None when it did."""
    text = stdout + "\n" + stderr
    found = _APT_UPDATE_FAILED.search(text)
    if exit_code == 0 and found is None:
        return None
    lines = text[found.start():].splitlines()[:1] if found else text.strip().splitlines()[-1:]
    return f"apt-get update exited {exit_code}: {(lines or ['no output'])[0].strip()[:200]}"


def parse_apt_simulation(stdout: str) -> list[tuple[str, str]]:
    """``apt-get -s`` output → (package, version it would install); ``"(remove)"`` for a removal."""
    out: list[tuple[str, str]] = []
    for line in stdout.splitlines():
        if m := _APT_INST.match(line):
            out.append((m.group(1), m.group(2)))
        elif m := _APT_REMV.match(line):
            out.append((m.group(1), "(remove)"))
    return out
