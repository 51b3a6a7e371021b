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
