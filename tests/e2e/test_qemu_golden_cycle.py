"""Issue 3 end to end: a golden image from a real Debian guest under QEMU, through the Azure SDK only.

Marketplace Debian 12 (the QEMU base image) → customise over SSH → the factory's generalize command
(waagent deprovision, cloud-init clean, empty machine-id, shutdown) → deallocate, generalize →
gallery version replicated to two regions → a VM from the eastus replica with another user and key,
checked over SSH (own machine-id, DNS through the resolved stub, cloud-init done) → teardown that
leaves no QEMU and no disk.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.mgmt.compute.models as cm
import azure.mgmt.network.models as nm
import paramiko
import pytest

from emulator.guests.qemu.image import build_base_image
from image_factory.guest_commands import linux_generalize_command
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.guests("qemu")]

CONN_ID = "qemu_golden"
HOME, SECOND = "westeurope", "eastus"
BUILDER, SMOKE = "builder", "smoke"
SSH_WAIT = 300.0  # TCG boot to SSH: ~50 s idle, 60-120 s under load


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    build_base_image(refresh=False, log=lambda _m: None)  # cached (or built once) before the emulator starts
    state = tmp_path_factory.mktemp("qemu-golden")
    la = LocalAzure(state, env={"LOCAL_AZURE_LINUX_RUNTIME": "qemu"})
    la.start(timeout=60)
    try:
        yield la
    finally:
        la.stop(timeout=120)  # by the PID LocalAzure started; QEMU guests are powered off on exit


@pytest.fixture(scope="module")
def arm(emu: LocalAzure) -> Iterator[Any]:
    from image_factory.hooks.arm import AzureResourceManagerHook

    with emu.connection(CONN_ID):
        yield AzureResourceManagerHook(CONN_ID)


def keypair() -> tuple[paramiko.Ed25519Key, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    import io

    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    return key, f"ssh-ed25519 {key.get_base64()} e2e"


class Ssh:
    """One SSH session to a guest, waiting for sshd as a fresh TCG boot needs."""

    def __init__(self, address: str, user: str, key: paramiko.PKey) -> None:
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        deadline = time.monotonic() + SSH_WAIT
        while True:
            try:
                self.client.connect(address, username=user, pkey=key, timeout=10, banner_timeout=60,
                                    auth_timeout=30, allow_agent=False, look_for_keys=False)
                break
            except (OSError, paramiko.SSHException, EOFError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        transport = self.client.get_transport()
        assert transport is not None
        self.host_key = transport.get_remote_server_key().get_base64()

    def run(self, command: str, timeout: float = 300) -> tuple[int, str]:
        _in, out, err = self.client.exec_command(command, timeout=timeout)
        text = out.read().decode() + err.read().decode()
        return out.channel.recv_exit_status(), text

    def close(self) -> None:
        self.client.close()


def network(arm: Any, group: str, location: str, prefix: str) -> tuple[str, str]:
    """VNet + NSG (SSH) + public IP + NIC: the NIC id and the public address."""
    net = arm.network
    nsg = net.network_security_groups.begin_create_or_update(group, f"{prefix}-nsg", nm.NetworkSecurityGroup(
        location=location, security_rules=[nm.SecurityRule(
            name="ssh", priority=100, direction="Inbound", access="Allow", protocol="Tcp",
            source_address_prefix="*", source_port_range="*", destination_address_prefix="*",
            destination_port_range="22")])).result()
    vnet = net.virtual_networks.begin_create_or_update(group, f"{prefix}-vnet", nm.VirtualNetwork(
        location=location, address_space=nm.AddressSpace(address_prefixes=["10.30.0.0/16"]),
        subnets=[nm.Subnet(name="default", address_prefix="10.30.1.0/24",
                           network_security_group=nm.NetworkSecurityGroup(id=nsg.id))])).result()
    pip = net.public_ip_addresses.begin_create_or_update(group, f"{prefix}-ip", nm.PublicIPAddress(
        location=location, sku=nm.PublicIPAddressSku(name="Standard"),
        public_ip_allocation_method="Static")).result()
    nic = net.network_interfaces.begin_create_or_update(group, f"{prefix}-nic", nm.NetworkInterface(
        location=location, ip_configurations=[nm.NetworkInterfaceIPConfiguration(
            name="ipconfig1", subnet=nm.Subnet(id=vnet.subnets[0].id),
            public_ip_address=nm.PublicIPAddress(id=pip.id))])).result()
    address = net.public_ip_addresses.get(group, f"{prefix}-ip").ip_address
    return str(nic.id), str(address)


def vm_body(location: str, nic_id: str, image: cm.ImageReference, admin: str, pubkey: str,
            name: str) -> cm.VirtualMachine:
    return cm.VirtualMachine(
        location=location,
        hardware_profile=cm.HardwareProfile(vm_size="Standard_B2s"),
        storage_profile=cm.StorageProfile(image_reference=image, os_disk=cm.OSDisk(
            create_option="FromImage", managed_disk=cm.ManagedDiskParameters(storage_account_type="StandardSSD_LRS"))),
        network_profile=cm.NetworkProfile(network_interfaces=[cm.NetworkInterfaceReference(id=nic_id, primary=True)]),
        os_profile=cm.OSProfile(computer_name=name, admin_username=admin, linux_configuration=cm.LinuxConfiguration(
            disable_password_authentication=True, ssh=cm.SshConfiguration(public_keys=[
                cm.SshPublicKey(path=f"/home/{admin}/.ssh/authorized_keys", key_data=pubkey)]))),
    )


def power_state(arm: Any, group: str, vm: str) -> str:
    view = arm.compute.virtual_machines.instance_view(group, vm)
    return next((s.code for s in view.statuses or [] if s.code and s.code.startswith("PowerState/")), "")


def assert_dns_configured(ssh: Ssh) -> None:
    """Name resolution is set up (no internet from the guest, so no outside name is looked up):
    systemd-resolved runs, /etc/resolv.conf (which waagent deprovisioning deletes) points at its
    stub, resolved has the upstream server DHCP gave the NIC, and it answers a query."""
    code, out = ssh.run("systemctl is-active systemd-resolved")
    assert code == 0 and out.strip() == "active", out
    code, out = ssh.run("cat /etc/resolv.conf")
    assert code == 0 and "nameserver 127.0.0.53" in out.splitlines(), f"no resolver configured: {out!r}"
    code, out = ssh.run("resolvectl dns")
    assert code == 0 and any(":" in line and line.split(":", 1)[1].strip() for line in out.splitlines()), \
        f"resolved has no DNS server for any link: {out!r}"
    code, out = ssh.run("resolvectl query --legend=no \"$(hostname)\"")
    assert code == 0 and "smoke-vm" in out, out


def qemu_pids_for(state_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "qemu-system" in line and str(state_dir) in line]


def leftover_disks(state_dir: Path) -> list[Path]:
    found = []
    for sub in ("guests", "disks"):
        if (state_dir / sub).is_dir():
            found += [p for p in (state_dir / sub).rglob("*") if p.is_file()]
    found += [p for p in state_dir.rglob("*") if p.suffix in (".vhd", ".qcow2", ".vhdx", ".part", ".img")]
    return sorted(set(found))


def test_golden_image_cycle_with_real_guests(emu: LocalAzure, arm: Any) -> None:
    run = uuid.uuid4().hex[:8]
    group, gallery_group = f"e2e-build-{run}", f"e2e-gallery-{run}"
    token = f"golden-{run}"
    for name in (group, gallery_group):
        arm.resources.resource_groups.create_or_update(name, {"location": HOME})
    try:
        # source VM from the Marketplace: Debian 12 gen2 latest is the QEMU base image
        build_key, build_pub = keypair()
        nic, address = network(arm, group, HOME, "build")
        image = cm.ImageReference(publisher="Debian", offer="debian-12", sku="12-gen2", version="latest")
        vm = arm.compute.virtual_machines.begin_create_or_update(
            group, "build-vm", vm_body(HOME, nic, image, BUILDER, build_pub, "build-vm")).result()
        assert vm.provisioning_state == "Succeeded"
        exact = vm.storage_profile.image_reference.exact_version
        assert exact == build_base_image(refresh=False, log=lambda _m: None).version

        # customise over SSH with the key given at creation
        ssh = Ssh(address, BUILDER, build_key)
        build_host_key = ssh.host_key
        code, out = ssh.run("hostname")
        assert code == 0 and out.strip() == "build-vm"
        code, out = ssh.run(f"echo {token} | sudo tee /etc/golden-release")
        assert code == 0, out
        code, build_machine_id = ssh.run("cat /etc/machine-id")
        assert code == 0 and build_machine_id.strip(), build_machine_id
        # deprovision and power off from inside: the connection drops with the shutdown
        try:
            ssh.run(linux_generalize_command(), timeout=120)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        ssh.close()
        deadline = time.monotonic() + 300
        while power_state(arm, group, "build-vm") != "PowerState/stopped":
            assert time.monotonic() < deadline, "the guest did not power off after deprovisioning"
            time.sleep(2)
        arm.compute.virtual_machines.begin_deallocate(group, "build-vm").result()
        arm.compute.virtual_machines.generalize(group, "build-vm")

        # gallery, definition, version 1.0.0 replicated to two regions
        gal = arm.compute.galleries.begin_create_or_update(
            gallery_group, f"e2e_gallery_{run}", cm.Gallery(location=HOME)).result()
        definition = arm.compute.gallery_images.begin_create_or_update(
            gallery_group, gal.name, "debian12-golden", cm.GalleryImage(
                location=HOME, os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
                identifier=cm.GalleryImageIdentifier(publisher="E2E", offer="debian-12-golden", sku=run))).result()
        version = arm.compute.gallery_image_versions.begin_create_or_update(
            gallery_group, gal.name, definition.name, "1.0.0", cm.GalleryImageVersion(
                location=HOME,
                publishing_profile=cm.GalleryImageVersionPublishingProfile(target_regions=[
                    cm.TargetRegion(name=HOME, regional_replica_count=1),
                    cm.TargetRegion(name=SECOND, regional_replica_count=1)]),
                storage_profile=cm.GalleryImageVersionStorageProfile(
                    source=cm.GalleryArtifactVersionFullSource(virtual_machine_id=vm.id)))).result()
        assert version.provisioning_state == "Succeeded"
        status = arm.compute.gallery_image_versions.get(
            gallery_group, gal.name, definition.name, "1.0.0", expand="ReplicationStatus").replication_status
        assert {s.region.replace(" ", "").lower() for s in status.summary} == {HOME, SECOND}
        assert str(getattr(status.aggregated_state, "value", status.aggregated_state)) == "Completed"

        # a VM in eastus from the replica, another user and key
        smoke_key, smoke_pub = keypair()
        smoke_nic, smoke_address = network(arm, group, SECOND, "smoke")
        smoke = arm.compute.virtual_machines.begin_create_or_update(
            group, "smoke-vm", vm_body(SECOND, smoke_nic, cm.ImageReference(id=version.id), SMOKE, smoke_pub,
                                       "smoke-vm")).result()
        assert smoke.provisioning_state == "Succeeded"
        ssh = Ssh(smoke_address, SMOKE, smoke_key)
        try:
            assert ssh.host_key != build_host_key, "deprovisioning must regenerate the SSH host keys"
            code, out = ssh.run("hostname")
            assert code == 0 and out.strip() == "smoke-vm"
            code, out = ssh.run(f"id {BUILDER}")
            assert code != 0, f"the build user survived deprovisioning: {out}"
            code, out = ssh.run("cloud-init status --wait", timeout=600)
            assert code == 0 and "done" in out, out
            code, out = ssh.run("cat /etc/machine-id")
            assert code == 0 and out.strip(), f"the clone has no machine-id: {out!r}"
            assert out.strip() != build_machine_id.strip(), "the clone inherited the build VM's machine-id"
            assert_dns_configured(ssh)
            code, out = ssh.run("cat /etc/golden-release")
            assert code == 0 and out.strip() == token
        finally:
            ssh.close()
    finally:
        for name in (group, gallery_group):
            arm.resources.resource_groups.begin_delete(name).result()

    # nothing left: no QEMU, no disk, no resource
    deadline = time.monotonic() + 60
    while (qemu_pids_for(emu.state_dir) or leftover_disks(emu.state_dir)) and time.monotonic() < deadline:
        time.sleep(1)
    assert qemu_pids_for(emu.state_dir) == []
    assert leftover_disks(emu.state_dir) == []
    inventory = emu.ops("GET", "inventory")
    assert inventory["value"] == [], inventory
