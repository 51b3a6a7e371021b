"""The generalize command is one privileged shell whose steps run in the only order that works; apt's answers
about pending updates are read as apt writes them."""

from __future__ import annotations

import shlex

from image_factory.guest_commands import (
    LINUX_GENERALIZE_STEPS,
    apt_update_failure,
    linux_generalize_command,
    linux_shutdown_command,
    parse_apt_simulation,
)


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


# pending package updates ---------------------------------------------------------------------------------
APT_SIMULATION = """NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following NEW packages will be installed:
  linux-image-6.1.0-28-cloud-amd64
The following packages will be upgraded:
  libc6 openssl
2 upgraded, 1 newly installed, 1 to remove and 0 not upgraded.
Inst libc6 [2.36-9+deb12u4] (2.36-9+deb12u9 Debian:12.9/stable [amd64]) []
Inst openssl [3.0.14-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst linux-image-6.1.0-28-cloud-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])
Remv linux-image-6.1.0-25-cloud-amd64 [6.1.106-3]
Conf libc6 (2.36-9+deb12u9 Debian:12.9/stable [amd64])
Conf openssl (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
"""


def test_apt_simulation_lists_what_would_be_installed_or_removed() -> None:
    assert parse_apt_simulation(APT_SIMULATION) == [
        ("libc6", "2.36-9+deb12u9"), ("openssl", "3.0.15-1~deb12u1"),
        ("linux-image-6.1.0-28-cloud-amd64", "6.1.119-1"), ("linux-image-6.1.0-25-cloud-amd64", "(remove)")]
    assert parse_apt_simulation("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not "
                                "upgraded.\n") == []


def test_apt_update_that_could_not_reach_a_mirror_is_a_failure_even_with_exit_code_0() -> None:
    ok = "Hit:1 http://deb.debian.org/debian bookworm InRelease\nReading package lists...\n"
    assert apt_update_failure(0, ok, "") is None
    offline_out = ("Err:1 http://deb.debian.org/debian bookworm InRelease\n  Temporary failure resolving "
                   "'deb.debian.org'\nReading package lists...\n")
    offline_err = ("W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure "
                   "resolving 'deb.debian.org'\nW: Some index files failed to download. They have been ignored, or "
                   "old ones used instead.\n")
    assert apt_update_failure(0, offline_out, offline_err) == \
        "apt-get update exited 0: Err:1 http://deb.debian.org/debian bookworm InRelease"
    assert apt_update_failure(0, ok, offline_err) == ("apt-get update exited 0: W: Failed to fetch "
                                                      "http://deb.debian.org/debian/dists/bookworm/InRelease  "
                                                      "Temporary failure resolving 'deb.debian.org'")
    assert apt_update_failure(100, "", "E: Could not get lock /var/lib/apt/lists/lock\n") == \
        "apt-get update exited 100: E: Could not get lock /var/lib/apt/lists/lock"
    assert apt_update_failure(100, "", "") == "apt-get update exited 100: no output"
