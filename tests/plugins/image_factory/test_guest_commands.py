"""The generalize command is one privileged shell whose steps run in the only order that works."""

from __future__ import annotations

import shlex

from image_factory.guest_commands import LINUX_GENERALIZE_STEPS, linux_generalize_command, linux_shutdown_command


def inner_script(command: str) -> str:
    """The script ``sudo sh -c`` runs, as the remote shell will see it after word splitting."""
    words = shlex.split(command)
    assert words[:3] == ["sudo", "sh", "-c"] and len(words) == 4, words
    return words[3]


def test_generalize_is_one_sudo_shell_that_round_trips_through_shlex() -> None:
    command = linux_generalize_command()
    script = inner_script(command)
    assert script.split(" && ") == list(LINUX_GENERALIZE_STEPS)
    assert shlex.join(["sudo", "sh", "-c", script]) == command


def test_deprovision_precedes_the_machine_id_which_precedes_the_power_off() -> None:
    steps = inner_script(linux_generalize_command()).split(" && ")

    def index(prefix: str) -> int:
        return next(i for i, step in enumerate(steps) if step.startswith(prefix))

    wait, deprovision = index("{ cloud-init status --wait"), index("waagent -deprovision+user -force")
    clean = index("cloud-init clean --logs")
    assert wait == 0 < deprovision < clean
    machine_id, dbus_id = index("truncate -s 0 /etc/machine-id"), index("rm -f /var/lib/dbus/machine-id")
    sync, power_off = index("sync"), index("shutdown -h now")
    assert deprovision < machine_id < power_off
    assert max(deprovision, clean, machine_id, dbus_id) < sync < power_off == len(steps) - 1


def test_shutdown_only_powers_off() -> None:
    assert inner_script(linux_shutdown_command()).split(" && ") == ["sync", "shutdown -h now"]
