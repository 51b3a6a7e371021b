"""Base images, cloud-init's first boot and waagent's deprovision as pure state machines (no servers)."""

from __future__ import annotations

import copy

import pytest

from emulator.guests.simulated import catalog, disk
from emulator.guests.simulated.linux import LinuxSystem, Provisioning
from emulator.guests.simulated.session import FakeHooks
from tests.emulator.guests.simulated.conftest import run


def test_base_disks_describe_marketplace_images():
    linux = disk.base_disk("Linux", "debian-12", "0.20240603.1234")
    assert linux["kind"] == "simulated"
    os_ = linux["os"]
    assert os_["family"] == "linux" and os_["release"]["VERSION_ID"] == "12"
    assert os_["built_serial"] == catalog.serial_of(__import__("datetime").date(2024, 6, 1))
    assert {"openssh-server", "cloud-init", "waagent", "sudo"} <= set(os_["packages"])
    assert os_["packages"]["sudo"] == catalog.archive_version("sudo", os_["built_serial"])
    assert set(os_["users"]) == {"root", "daemon", "nobody", "sshd"}  # generalized: nobody to log in as
    assert os_["files"]["/etc/machine-id"]["data"] == ""
    assert not [p for p in os_["files"] if p.startswith("/etc/ssh/ssh_host_")]

    windows = disk.base_disk("Windows", "2022-datacenter-azure-edition")["os"]
    assert windows["family"] == "windows" and windows["build"] == 20348
    assert windows["image_state"] == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    assert [h["HotFixID"].startswith("KB") for h in windows["hotfixes"]] == [True, True]
    assert disk.base_disk("Windows", "2019-Datacenter")["os"]["build"] == 17763
    with pytest.raises(ValueError, match="no simulated Linux image"):
        disk.base_disk("Linux", "ubuntu-24.04")


def test_images_built_in_the_same_month_are_identical_and_later_ones_newer():
    a = disk.base_disk("Linux", "debian-12", "0.20240601.1")["os"]["packages"]
    b = disk.base_disk("Linux", "debian-12", "0.20240628.9")["os"]["packages"]
    c = disk.base_disk("Linux", "debian-12", "0.20250601.1")["os"]["packages"]
    assert a == b
    assert a != c and set(a) == set(c)
    # binary packages of one source move together, as in the archive
    assert c["openssh-server"] == c["openssh-client"] == c["openssh-sftp-server"]


def test_first_boot_makes_the_image_this_vm():
    system = LinuxSystem(disk.base_disk("Linux", "debian-12")["os"])
    system.boot()
    system.first_boot(Provisioning("vm-42", "build-42", "azureuser", ["ssh-ed25519 AAAAKEY me"], password="Pw-123456!"))
    assert system.hostname == "build-42" and system.read("/etc/hostname") == "build-42\n"
    assert len(system.machine_id()) == 32
    assert system.authorized_keys("azureuser") == ["ssh-ed25519 AAAAKEY me"]
    assert system.sudo_rule("azureuser") == "nopasswd"
    assert system.password_auth_enabled()
    assert system.provisioned_user() == "azureuser"
    assert "<UserPassword>REDACTED</UserPassword>" in system.read("/var/lib/waagent/ovf-env.xml")
    assert set(system.host_key_fingerprints()) == {"ed25519", "ecdsa"}
    assert system.cached_instance_id() == "vm-42"


def test_deprovision_removes_the_provisioned_user_and_machine_identity(debian: LinuxSystem):
    keys_before = debian.host_key_fingerprints()
    machine_id = debian.machine_id()
    warnings = debian.deprovision(deluser=True)
    assert warnings[-1] == "WARNING! azureuser account and entire home directory will be deleted."
    assert "azureuser" not in debian.users
    assert not debian.exists("/home/azureuser")
    assert debian.host_key_fingerprints() == {} and keys_before
    assert debian.hostname == "localhost.localdomain"
    assert not debian.exists("/var/lib/waagent/ovf-env.xml")
    assert not debian.exists("/etc/resolv.conf")
    # what the real agent leaves behind (LOCAL-GUEST-NOTES.md): machine-id, cloud-init state, its sudoers rule
    assert debian.machine_id() == machine_id
    assert debian.cached_instance_id() == "vm-1"
    assert debian.exists("/etc/sudoers.d/90-cloud-init-users")


def test_deprovision_without_ovf_env_keeps_the_user(debian: LinuxSystem):
    debian.remove("/var/lib/waagent/ovf-env.xml")
    warnings = debian.deprovision(deluser=True)
    assert warnings[-2:] == ["WARNING! ovf-env.xml is not found.", "WARNING! Skip delete user."]
    assert "azureuser" in debian.users


def test_generalize_capture_and_boot_a_new_vm(debian: LinuxSystem, hooks: FakeHooks):
    """The pipeline's Linux generalize step, then a VM from the captured disk: new identity, build user gone."""
    script = "waagent -deprovision+user -force && truncate -s 0 /etc/machine-id && cloud-init clean --logs"
    assert run(debian, hooks, f"sudo sh -c '{script}'")[0] == 0
    old_id = debian.os["files"]["/etc/machine-id"]
    assert old_id["data"] == ""
    captured = disk.descriptor(debian.os)
    source = copy.deepcopy(captured)

    vm = LinuxSystem(copy.deepcopy(captured["os"]))
    vm.boot()
    vm.first_boot(Provisioning("vm-smoke", "smoke-1", "tester", ["ssh-ed25519 AAAAOTHER t"]))
    assert vm.hostname == "smoke-1"
    assert "azureuser" not in vm.users and "tester" in vm.users
    assert len(vm.machine_id()) == 32
    assert captured == source  # booting copies: the image never changes


def test_specialized_boot_keeps_the_disk_identity(debian: LinuxSystem):
    clone = LinuxSystem(copy.deepcopy(debian.os))
    clone.boot()  # no first_boot: a specialized image has no osProfile
    assert clone.hostname == "buildvm"
    assert clone.machine_id() == debian.machine_id()
    assert clone.authorized_keys("azureuser") == debian.authorized_keys("azureuser")
    assert clone.host_key_fingerprints() == debian.host_key_fingerprints()


def test_an_undeprovisioned_image_shares_machine_id_with_its_clones(debian: LinuxSystem):
    """The real gotcha: machine-id is regenerated only when empty, so it must be truncated before capture."""
    clone = LinuxSystem(copy.deepcopy(debian.os))
    clone.boot()
    clone.first_boot(Provisioning("vm-2", "clone", "azureuser", ["ssh-ed25519 AAAAKEY x"]))
    assert clone.machine_id() == debian.machine_id()
