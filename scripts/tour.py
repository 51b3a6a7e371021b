"""A scripted tour of the local Azure with the real Azure SDK, through the factory's own hook.

It does by hand, in one script, what the golden-image pipeline will automate: a source VM from the
latest Debian 12 Marketplace image, a look inside over SSH, deprovision + shutdown, generalize,
a gallery image version replicated to three regions (progress printed as it happens), a VM booted
from the replica in another region, promotion, and a teardown that leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import azure.mgmt.compute.models as cm
import azure.mgmt.network.models as nm
import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from image_factory.guest_commands import linux_generalize_command  # noqa: E402
from image_factory.hooks.arm import AzureResourceManagerHook  # noqa: E402

for _noisy in ("azure", "paramiko"):  # the SDK logs every request, paramiko every login, at INFO
    logging.getLogger(_noisy).setLevel(logging.WARNING)

CONN_ID = "local_azure"
HOME, SECOND, THIRD = "westeurope", "eastus", "northeurope"
ADMIN = "builder"


def v(value: Any) -> str:
    """An SDK enum's wire value ("Completed"), or the value itself."""
    return str(getattr(value, "value", value))


def step(text: str) -> float:
    print(f"\n\033[1m▶ {text}\033[0m", flush=True)
    return time.monotonic()


def done(started: float, text: str = "") -> None:
    print(f"  ✓ {text} ({time.monotonic() - started:.1f} s)", flush=True)


def connect(state_dir: Path) -> AzureResourceManagerHook:
    info = json.loads((state_dir / "endpoint.json").read_text())
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({
        "conn_type": "azure", "login": "tour", "password": "tour-secret",
        "extra": {"endpoint": info["endpoint"], "ca_bundle": info["ca_bundle"],
                  "tenantId": info["tenant_id"], "subscriptionId": info["subscription_id"]},
    })
    return AzureResourceManagerHook(CONN_ID)


def ssh_keypair() -> tuple[paramiko.PKey, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode()
    import io

    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    return pkey, f"ssh-ed25519 {pkey.get_base64()} tour"


def network(arm: AzureResourceManagerHook, group: str, location: str, prefix: str, tags: dict[str, str]) -> str:
    """VNet, subnet, NSG allowing SSH from this machine only, public IP, NIC: returns the NIC id."""
    net = arm.network
    nsg = net.network_security_groups.begin_create_or_update(group, f"{prefix}-nsg", nm.NetworkSecurityGroup(
        location=location, tags=tags,
        security_rules=[nm.SecurityRule(
            name="ssh-from-builder", priority=100, direction="Inbound", access="Allow", protocol="Tcp",
            source_address_prefix="127.0.0.1/32", source_port_range="*", destination_address_prefix="*",
            destination_port_range="22")],
    )).result()
    vnet = net.virtual_networks.begin_create_or_update(group, f"{prefix}-vnet", nm.VirtualNetwork(
        location=location, tags=tags, address_space=nm.AddressSpace(address_prefixes=["10.20.0.0/16"]),
        subnets=[nm.Subnet(name="build", address_prefix="10.20.1.0/24",
                           network_security_group=nm.NetworkSecurityGroup(id=nsg.id))],
    )).result()
    pip = net.public_ip_addresses.begin_create_or_update(group, f"{prefix}-ip", nm.PublicIPAddress(
        location=location, tags=tags, sku=nm.PublicIPAddressSku(name="Standard"), public_ip_allocation_method="Static",
    )).result()
    nic = net.network_interfaces.begin_create_or_update(group, f"{prefix}-nic", nm.NetworkInterface(
        location=location, tags=tags,
        ip_configurations=[nm.NetworkInterfaceIPConfiguration(
            name="ipconfig1", subnet=nm.Subnet(id=vnet.subnets[0].id), public_ip_address=nm.PublicIPAddress(id=pip.id))],
    )).result()
    print(f"  {prefix}: vnet {vnet.name}, nsg {nsg.name}, public IP {pip.ip_address}, nic {nic.name}")
    return str(nic.id)


def public_ip(arm: AzureResourceManagerHook, group: str, prefix: str) -> str:
    return str(arm.network.public_ip_addresses.get(group, f"{prefix}-ip").ip_address)


def ssh(address: str, key: paramiko.PKey, command: str, user: str = ADMIN) -> tuple[int, str]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a brand-new VM: its host key is new too
    deadline = time.monotonic() + 300  # a QEMU guest under TCG can take 60-120 s to boot on a loaded machine
    while True:
        try:
            client.connect(address, username=user, pkey=key, timeout=10, allow_agent=False, look_for_keys=False)
            break
        except (OSError, paramiko.SSHException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    try:
        _in, out, err = client.exec_command(command, timeout=600)  # apt-get under TCG is slow
        text = out.read().decode() + err.read().decode()
        return out.channel.recv_exit_status(), text
    except (paramiko.SSHException, EOFError, OSError):
        return -1, "(connection closed by the guest)"
    finally:
        client.close()


def power_state(arm: AzureResourceManagerHook, group: str, vm: str) -> str:
    view = arm.compute.virtual_machines.instance_view(group, vm)
    codes = [s.code for s in view.statuses or [] if s.code and s.code.startswith("PowerState/")]
    return codes[0] if codes else "PowerState/unknown"


def vm_body(location: str, nic_id: str, image: cm.ImageReference, pubkey: str, name: str,
            admin: str = ADMIN) -> cm.VirtualMachine:
    return cm.VirtualMachine(
        location=location,
        tags={"factory": "tour"},
        hardware_profile=cm.HardwareProfile(vm_size="Standard_B2s"),
        storage_profile=cm.StorageProfile(
            image_reference=image,
            os_disk=cm.OSDisk(create_option="FromImage",
                              managed_disk=cm.ManagedDiskParameters(storage_account_type="StandardSSD_LRS")),
        ),
        network_profile=cm.NetworkProfile(network_interfaces=[cm.NetworkInterfaceReference(id=nic_id, primary=True)]),
        os_profile=cm.OSProfile(
            computer_name=name, admin_username=admin,
            linux_configuration=cm.LinuxConfiguration(
                disable_password_authentication=True,
                ssh=cm.SshConfiguration(public_keys=[
                    cm.SshPublicKey(path=f"/home/{admin}/.ssh/authorized_keys", key_data=pubkey)]),
            ),
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", default=os.environ.get("LOCAL_AZURE_STATE_DIR", ".local-azure"))
    parser.add_argument("--keep", action="store_true", help="leave the resources in place at the end")
    args = parser.parse_args()
    arm = connect(Path(args.state_dir))
    stamp = time.strftime("%Y%m%d%H%M%S")
    group, gallery_group = f"tour-build-{stamp}", f"tour-gallery-{stamp}"
    tags = {"factory": "tour", "run": stamp}
    tour_started = time.monotonic()
    print(arm.test_connection()[1])

    t = step("Resource groups for the build and for the gallery")
    for name in (group, gallery_group):
        arm.resources.resource_groups.create_or_update(name, {"location": HOME, "tags": tags})
    done(t, f"{group}, {gallery_group}")
    try:
        t = step("Resolve the latest Debian 12 (gen2) Marketplace image")
        versions = arm.compute.virtual_machine_images.list(HOME, "Debian", "debian-12", "12-gen2")
        latest = versions[-1].name if versions else "latest"
        done(t, f"Debian:debian-12:12-gen2: {len(versions)} versions, latest = {latest}")

        t = step("Build network: NSG (SSH from this machine only), VNet, public IP, NIC")
        nic = network(arm, group, HOME, "build", tags)
        done(t)

        t = step("Provision the source VM")
        key, pubkey = ssh_keypair()
        image = cm.ImageReference(publisher="Debian", offer="debian-12", sku="12-gen2", version="latest")
        vm = arm.compute.virtual_machines.begin_create_or_update(group, "build-vm",
                                                                  vm_body(HOME, nic, image, pubkey, "build-vm")).result()
        done(t, f"{vm.name}: {v(vm.provisioning_state)}, {power_state(arm, group, 'build-vm')}, "
                f"image version {vm.storage_profile.image_reference.exact_version}")

        address = public_ip(arm, group, "build")
        t = step(f"Customise over SSH at {address}")
        # images ship without package lists (as Azure's do): update them before installing
        for command in ("hostname", "sudo apt-get update -qq", "sudo apt-get install -y nginx",
                        "systemctl is-active ssh"):
            code, out = ssh(address, key, command)
            print(f"  $ {command}  → exit {code}: {out.strip().splitlines()[-1] if out.strip() else ''}")
        done(t)

        t = step("Generalize: waagent -deprovision+user, fresh machine-id, shutdown, deallocate, ARM generalize")
        ssh(address, key, linux_generalize_command())
        while power_state(arm, group, "build-vm") != "PowerState/stopped":
            time.sleep(0.5)
        print("  guest is off:", power_state(arm, group, "build-vm"))
        arm.compute.virtual_machines.begin_deallocate(group, "build-vm").result()
        arm.compute.virtual_machines.generalize(group, "build-vm")
        done(t, power_state(arm, group, "build-vm"))

        t = step("Gallery and image definition")
        gal = arm.compute.galleries.begin_create_or_update(gallery_group, f"tour_gallery_{stamp}", cm.Gallery(
            location=HOME, tags=tags, description="Golden images built by the tour")).result()
        definition = arm.compute.gallery_images.begin_create_or_update(
            gallery_group, gal.name, "debian12-base", cm.GalleryImage(
                location=HOME, tags=tags, os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
                identifier=cm.GalleryImageIdentifier(publisher="ImageFactory", offer="debian-12-golden", sku="base"),
            )).result()
        done(t, f"{gal.name}/{definition.name}")

        t = step(f"Image version 1.0.0 from the VM, replicated to {HOME}, {SECOND}, {THIRD}")
        poller = arm.compute.gallery_image_versions.begin_create_or_update(
            gallery_group, gal.name, definition.name, "1.0.0", cm.GalleryImageVersion(
                location=HOME, tags=tags,
                publishing_profile=cm.GalleryImageVersionPublishingProfile(exclude_from_latest=True, target_regions=[
                    cm.TargetRegion(name=HOME, regional_replica_count=1, storage_account_type="Standard_LRS"),
                    cm.TargetRegion(name=SECOND, regional_replica_count=2, storage_account_type="Standard_LRS"),
                    cm.TargetRegion(name=THIRD, regional_replica_count=1, storage_account_type="Standard_ZRS")]),
                storage_profile=cm.GalleryImageVersionStorageProfile(
                    source=cm.GalleryArtifactVersionFullSource(virtual_machine_id=vm.id)),
            ))
        last: tuple[Any, ...] = ()
        while True:
            version = arm.compute.gallery_image_versions.get(gallery_group, gal.name, definition.name, "1.0.0",
                                                             expand="ReplicationStatus")
            status = version.replication_status
            seen = tuple((s.region, str(s.state), (s.progress or 0) // 25) for s in status.summary)
            if seen != last:  # a line per region state change or quarter of progress
                print(f"  {v(status.aggregated_state)}: " + ", ".join(
                    f"{s.region} {v(s.state)} {s.progress}%" for s in status.summary), flush=True)
                last = seen
            if v(status.aggregated_state) in ("Completed", "Failed"):
                break
            time.sleep(0.5)
        version = poller.result()
        done(t, f"version {version.name}: {v(version.provisioning_state)}")
        if v(version.provisioning_state) != "Succeeded":
            raise SystemExit(f"replication ended {v(version.provisioning_state)}")

        t = step(f"Smoke test: a VM from the {SECOND} replica")
        smoke_nic = network(arm, group, SECOND, "smoke", tags)
        smoke = arm.compute.virtual_machines.begin_create_or_update(
            group, "smoke-vm", vm_body(SECOND, smoke_nic, cm.ImageReference(id=version.id), pubkey, "smoke-vm",
                                       admin="smoke")).result()
        smoke_address = public_ip(arm, group, "smoke")
        _code, host = ssh(smoke_address, key, "hostname", user="smoke")
        _code, nginx = ssh(smoke_address, key, "dpkg-query -W -f='${Package} ${Version}\\n' nginx", user="smoke")
        gone, _out = ssh(smoke_address, key, f"id {ADMIN}", user="smoke")
        print(f"  hostname: {host.strip()}; nginx baked in: {nginx.strip()}; "
              f"build user '{ADMIN}' {'gone' if gone else 'STILL PRESENT'}")
        if gone == 0:
            raise SystemExit("smoke test failed: the build user survived deprovisioning")
        done(t, f"{smoke.name} booted from {version.name} in {smoke.location}")

        t = step("Promote: excludeFromLatest = false")
        arm.compute.gallery_image_versions.begin_update(
            gallery_group, gal.name, definition.name, "1.0.0", cm.GalleryImageVersionUpdate(
                publishing_profile=cm.GalleryImageVersionPublishingProfile(exclude_from_latest=False))).result()
        done(t)
    finally:
        if not args.keep:
            t = step("Teardown: delete the build group (the gallery group too: this is a tour)")
            for name in (group, gallery_group):
                arm.resources.resource_groups.begin_delete(name).result()
            left = [g.name for g in arm.resources.resource_groups.list() if g.name in (group, gallery_group)]
            done(t, f"left behind: {left or 'nothing'}")
    print(f"\nTour finished in {time.monotonic() - tour_started:.1f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
