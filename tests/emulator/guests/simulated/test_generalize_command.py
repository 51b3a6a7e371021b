"""The factory's Linux generalize command in the simulated guest: every step has the effect it has on Debian.

The simulated guest stands in for a real one in the fast tests, so the command the factory sends
(``image_factory.guest_commands.linux_generalize_command``) must run there unchanged and leave
the disk as a real guest does: build user gone, cloud-init state and logs gone, machine-id empty,
D-Bus copy gone, written out, powered off; and a VM from the captured disk gets its own identity.
"""

from __future__ import annotations

import copy

import pytest

from emulator.guests.simulated import disk
from emulator.guests.simulated.linux import DBUS_MACHINE_ID, LinuxSystem, Provisioning
from emulator.guests.simulated.session import FakeHooks
from emulator.guests.simulated.shell import PowerOff
from image_factory.guest_commands import LINUX_GENERALIZE_STEPS, linux_generalize_command
from tests.emulator.guests.simulated.conftest import run

pytestmark = pytest.mark.guests("simulated")


def generalize(system: LinuxSystem, hooks: FakeHooks) -> None:
    """Run the command as the provisioned user over a shell; the power-off ends the session."""
    with pytest.raises(PowerOff):
        run(system, hooks, linux_generalize_command())


def test_the_generalize_command_runs_every_step_as_on_debian(debian: LinuxSystem, hooks: FakeHooks) -> None:
    assert debian.read(DBUS_MACHINE_ID) == debian.read("/etc/machine-id")  # dbus's link, as on a booted Debian
    debian.write("/var/log/cloud-init-output.log", "Cloud-init v. 22.4.2 finished\n")
    assert debian.exists("/var/log/cloud-init.log") and debian.cached_instance_id() == "vm-1"

    generalize(debian, hooks)

    assert "azureuser" not in debian.users  # waagent -deprovision+user
    assert debian.host_key_fingerprints() == {}
    assert not debian.exists("/var/lib/cloud/data/instance-id")  # cloud-init clean
    assert not debian.exists("/var/lib/cloud/instances")
    assert not debian.exists("/var/log/cloud-init.log") and not debian.exists("/var/log/cloud-init-output.log")
    assert debian.exists("/etc/machine-id") and debian.machine_id() == ""  # truncate -s 0: empty, not deleted
    assert debian.files["/etc/machine-id"]["mode"] == 0o444
    assert not debian.exists(DBUS_MACHINE_ID)  # rm -f
    assert hooks.actions == ["poweroff"]  # shutdown -h now, after every other step


def test_rm_f_of_an_absent_dbus_id_does_not_stop_the_chain(debian: LinuxSystem, hooks: FakeHooks) -> None:
    debian.remove(DBUS_MACHINE_ID)
    generalize(debian, hooks)
    assert hooks.actions == ["poweroff"]


def test_a_failing_step_stops_the_chain_before_the_power_off(debian: LinuxSystem, hooks: FakeHooks) -> None:
    """The steps are joined with &&: a guest whose deprovisioning fails stays up to be looked at."""
    debian.remove_packages(["cloud-init"])
    code, _out, err = run(debian, hooks, linux_generalize_command())
    assert code != 0 and "cloud-init" in err
    assert hooks.actions == []
    assert debian.machine_id() != ""  # the steps after the failing one did not run


def test_sync_and_truncate_as_the_command_uses_them(debian: LinuxSystem, hooks: FakeHooks) -> None:
    assert {"sync", "truncate -s 0 /etc/machine-id"} <= set(LINUX_GENERALIZE_STEPS)
    assert run(debian, hooks, "sync")[0] == 0
    code, _out, err = run(debian, hooks, "truncate -s 0 /etc/machine-id")
    assert code != 0 and "Permission denied" in err  # root's file: only through sudo
    assert debian.machine_id() != ""


def test_a_vm_from_the_generalized_disk_gets_its_own_identity_and_resolver(
    debian: LinuxSystem, hooks: FakeHooks
) -> None:
    build_id = debian.machine_id()
    generalize(debian, hooks)
    captured = disk.descriptor(debian.os)

    clone = LinuxSystem(copy.deepcopy(captured["os"]))
    clone.boot()
    clone.first_boot(Provisioning("vm-smoke", "smoke-1", "tester", ["ssh-ed25519 AAAAOTHER t"]))
    assert len(clone.machine_id()) == 32 and clone.machine_id() != build_id
    assert clone.read(DBUS_MACHINE_ID) == clone.read("/etc/machine-id")  # D-Bus sees the new id too
    assert "nameserver" in clone.read("/etc/resolv.conf")
    assert clone.cloud_init_status() == "done"
    assert "azureuser" not in clone.users and "tester" in clone.users
