"""Simulated guests inside the running emulator: VMs made with the real SDK answer SSH/WinRM at the public IP
ARM reports, and ``/_emulator/guests`` shows them, their command logs and their faults."""

from __future__ import annotations

from typing import Any

import paramiko
import pytest
import winrm

from tests.emulator.guests.simulated.conftest import KeyPair, exec_
from tests.emulator.services.compute.conftest import WINDOWS_PASSWORD, Kit

pytestmark = [pytest.mark.timeout(180), pytest.mark.guests("simulated")]


@pytest.fixture
def kit(arm: Any, group: str, location: str, keypair: KeyPair) -> Kit:
    """Compute's test kit (network + VM bodies through the real SDK), with a key we hold the private half of."""
    return Kit(arm, group, location, keypair.public)


def guest_of(local_azure: Any, vm_id: str) -> dict[str, Any]:
    listed = local_azure.ops("GET", "guests")["value"]
    return next(g for g in listed if g["vm_id"].lower() == vm_id.lower())


def connect(address: str, port: int, key: KeyPair) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(address, port=port, username="builder", pkey=key.pkey, look_for_keys=False, allow_agent=False,
                   timeout=10)
    return client


def test_a_linux_vm_from_the_sdk_answers_ssh_at_its_public_ip(kit: Kit, local_azure: Any, keypair: KeyPair):
    nic = kit.nic("sshvm-nic")
    body = kit.linux_body(nic, os_profile={
        "computerName": "sshbuild", "adminUsername": "builder",
        "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
            {"path": "/home/builder/.ssh/authorized_keys", "keyData": keypair.public}]}}})
    vm = kit.create("sshvm", body)
    public_ip = kit.arm.network.public_ip_addresses.get(kit.group, "sshvm-nic-ip").ip_address

    guest = guest_of(local_azure, vm.id)
    assert (guest["address"], guest["os"], guest["state"], guest["simulated"]) == (public_ip, "Linux", "running", True)
    client = connect(public_ip, guest["ports"]["ssh"], keypair)
    assert exec_(client, "hostname; sudo whoami") == (0, "sshbuild\nroot\n", "")

    detail = local_azure.ops("GET", "guests/sshvm")
    assert detail["hostname"] == "sshbuild" and "builder" in detail["users"]
    log = local_azure.ops("GET", "guests/sshvm/commands")["value"]
    assert log[-1]["command"] == "hostname; sudo whoami" and log[-1]["user"] == "builder"
    assert log[-1]["channel"] == "ssh" and log[-1]["exit_code"] == 0

    fault = local_azure.ops("POST", "guests/sshvm/faults",
                            {"match": "apt-get update*", "exit_code": 100, "stderr": "E: mirror down", "count": 1})
    assert fault["hits"] == 0 and fault["count"] == 1
    assert exec_(client, "sudo apt-get update") == (100, "", "E: mirror down\n")
    assert local_azure.ops("GET", "guests/sshvm/faults")["value"][0]["hits"] == 1
    local_azure.ops("POST", "guests/sshvm/faults", {"match": "hostname", "exit_code": 3})
    assert exec_(client, "hostname")[0] == 3
    local_azure.ops("DELETE", "guests/sshvm/faults")
    assert exec_(client, "hostname")[0] == 0

    ran = local_azure.ops("POST", f"guests/{public_ip}/run", {"script": "id -un; cat /etc/hostname"})
    assert ran == {"exit_code": 0, "stdout": "root\nsshbuild\n", "stderr": ""}

    # the guest follows ARM: powerOff drops the connection
    kit.compute.virtual_machines.begin_power_off(kit.group, "sshvm").result()
    assert guest_of(local_azure, vm.id)["state"] == "stopped"
    with pytest.raises((OSError, paramiko.SSHException)):
        connect(public_ip, guest["ports"]["ssh"], keypair)


def test_a_windows_vm_from_the_sdk_answers_winrm(kit: Kit, local_azure: Any):
    vm = kit.windows_vm("winrmvm", computer_name="winbuild01")
    public_ip = kit.arm.network.public_ip_addresses.get(kit.group, "winrmvm-nic-ip").ip_address
    guest = guest_of(local_azure, vm.id)
    assert guest["os"] == "Windows" and guest["address"] == public_ip
    s = winrm.Session(f"https://{public_ip}:{guest['ports']['winrms']}/wsman", auth=("factoryadmin", WINDOWS_PASSWORD),
                      transport="ntlm", server_cert_validation="ignore")
    r = s.run_ps("$env:COMPUTERNAME")
    assert (r.status_code, r.std_out) == (0, b"WINBUILD01\r\n")
    assert local_azure.ops("GET", "guests/winbuild01")["image_state"] == "IMAGE_STATE_COMPLETE"


def test_unknown_guests_and_bad_faults_are_refused(local_azure: Any):
    with pytest.raises(RuntimeError, match="404"):
        local_azure.ops("GET", "guests/no-such-vm/commands")
    with pytest.raises(RuntimeError, match="404"):
        local_azure.ops("POST", "guests/no-such-vm/faults", {"match": "*"})
    assert isinstance(local_azure.ops("GET", "guests")["value"], list)
    archive = local_azure.ops("GET", "guest-archive")
    assert archive["override"] is None and archive["serial"] > 0
