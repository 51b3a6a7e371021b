"""Virtual machines through the real SDK: create, instance view, power actions, generalize, delete."""

from __future__ import annotations

import re
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.emulator.services.compute.conftest import DEBIAN_GEN2, Kit, error_of

pytestmark = pytest.mark.guests("simulated")

RUNNING = ["ProvisioningState/succeeded", "PowerState/running"]


def _newest(kit: Kit, sku: str = "12") -> str:
    versions = kit.compute.virtual_machine_images.list(kit.location, "Debian", "debian-12", sku, orderby="name desc",
                                                       top=1)
    return str(versions[0].name)


@pytest.mark.azure
def test_create_from_marketplace_latest(kit: Kit, arm, ssh_public_key: str):
    vm = kit.linux_vm("vm1")
    assert vm.provisioning_state == "Succeeded"
    ref = vm.storage_profile.image_reference
    assert (ref.publisher, ref.offer, ref.sku, ref.version) == ("Debian", "debian-12", "12", "latest")
    assert ref.exact_version == _newest(kit)
    profile = vm.os_profile
    assert profile.computer_name == "buildvm" and profile.admin_username == "azureuser"
    assert profile.admin_password is None and profile.custom_data is None
    assert profile.linux_configuration.ssh.public_keys[0].key_data == ssh_public_key
    os_disk = vm.storage_profile.os_disk
    assert re.fullmatch(r"vm1_OsDisk_1_[0-9a-f]{32}", os_disk.name)
    assert os_disk.os_type == "Linux" and os_disk.create_option == "FromImage"
    assert os_disk.managed_disk.id.lower() == (
        f"/subscriptions/{arm.subscription_id}/resourceGroups/{kit.group}/providers/Microsoft.Compute/disks/"
        f"{os_disk.name}").lower()
    disk = kit.compute.disks.get(kit.group, os_disk.name)
    assert disk.managed_by.lower() == vm.id.lower() and disk.disk_state == "Attached"
    assert arm.network.network_interfaces.get(kit.group, "vm1-nic").virtual_machine.id.lower() == vm.id.lower()

    assert kit.statuses("vm1") == RUNNING
    view = kit.compute.virtual_machines.instance_view(kit.group, "vm1")
    assert view.computer_name == "buildvm"
    assert view.os_name and view.os_name.lower().startswith("debian")
    assert view.vm_agent.statuses[0].display_status == "Ready"
    assert view.hyper_v_generation == "V1"
    expanded = kit.compute.virtual_machines.get(kit.group, "vm1", expand="instanceView")
    assert [s.code for s in expanded.instance_view.statuses] == RUNNING
    assert kit.compute.virtual_machines.get(kit.group, "vm1").instance_view is None


def test_initial_answer_is_creating_with_an_async_operation(kit: Kit):
    body = kit.linux_body(kit.nic())
    first = kit.compute.virtual_machines.begin_create_or_update(kit.group, "early", body, polling=False).result()
    assert first.provisioning_state == "Creating"
    done = kit.compute.virtual_machines.begin_create_or_update(kit.group, "early", body).result()
    assert done.provisioning_state == "Succeeded"


@pytest.mark.azure
def test_gen2_sku_and_secrets_never_returned(kit: Kit):
    body = kit.linux_body(kit.nic(), image=dict(DEBIAN_GEN2), securityProfile={"securityType": "TrustedLaunch"},
                          diagnosticsProfile={"bootDiagnostics": {"enabled": True}})
    body["properties"]["osProfile"]["adminPassword"] = "Build-Pa55word"
    body["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] = False
    body["properties"]["osProfile"]["customData"] = "I2Nsb3VkLWNvbmZpZwo="
    vm = kit.create("gen2", body)
    assert vm.storage_profile.image_reference.exact_version == _newest(kit, "12-gen2")
    assert vm.security_profile.security_type == "TrustedLaunch"
    assert vm.diagnostics_profile.boot_diagnostics.enabled is True
    got = kit.compute.virtual_machines.get(kit.group, "gen2")
    assert got.os_profile.admin_password is None and got.os_profile.custom_data is None
    assert kit.compute.virtual_machines.instance_view(kit.group, "gen2").hyper_v_generation == "V2"


def test_windows_vm(kit: Kit):
    vm = kit.windows_vm("win")
    assert vm.storage_profile.os_disk.os_type == "Windows"
    assert vm.os_profile.windows_configuration.provision_vm_agent is True
    assert vm.os_profile.admin_password is None
    assert kit.statuses("win") == RUNNING
    view = kit.compute.virtual_machines.instance_view(kit.group, "win")
    assert view.computer_name == "winbuild" and "Windows Server 2022" in (view.os_name or "")


def test_power_actions_move_the_instance_view(kit: Kit):
    kit.linux_vm("pw")
    vms = kit.compute.virtual_machines
    vms.begin_power_off(kit.group, "pw").result()
    assert kit.statuses("pw") == ["ProvisioningState/succeeded", "PowerState/stopped"]
    vms.begin_start(kit.group, "pw").result()
    assert kit.statuses("pw") == RUNNING
    vms.begin_restart(kit.group, "pw").result()
    assert kit.statuses("pw") == RUNNING
    vms.begin_power_off(kit.group, "pw", skip_shutdown=True).result()
    assert kit.power("pw") == "PowerState/stopped"
    vms.begin_deallocate(kit.group, "pw").result()
    assert kit.statuses("pw") == ["ProvisioningState/succeeded", "PowerState/deallocated"]
    vms.begin_start(kit.group, "pw").result()  # from deallocated
    assert kit.statuses("pw") == RUNNING
    vms.begin_deallocate(kit.group, "pw").result()  # from running: the guest shuts down first
    assert kit.power("pw") == "PowerState/deallocated"
    assert kit.compute.virtual_machines.instance_view(kit.group, "pw").vm_agent.statuses[0].display_status == "Not Ready"


@pytest.mark.azure
def test_generalize_rules(kit: Kit):
    kit.linux_vm("gen")
    vms = kit.compute.virtual_machines
    with pytest.raises(ResourceExistsError) as err:
        vms.generalize(kit.group, "gen")
    assert error_of(err.value)[:3] == (
        409, "OperationNotAllowed", "Operation 'generalize' is not allowed on VM 'gen' since the VM is running.")
    vms.begin_deallocate(kit.group, "gen").result()
    assert vms.generalize(kit.group, "gen") is None
    assert kit.statuses("gen") == ["ProvisioningState/succeeded", "OSState/generalized", "PowerState/deallocated"]
    with pytest.raises(ResourceExistsError) as err:
        vms.begin_start(kit.group, "gen").result()
    assert error_of(err.value)[:3] == (
        409, "OperationNotAllowed", "Operation 'start' is not allowed on VM 'gen' since the VM is generalized.")


def test_guest_shutting_itself_down_shows_stopped(kit: Kit):
    kit.linux_vm("self")
    poller = kit.compute.virtual_machines.begin_run_command(
        kit.group, "self", {"commandId": "RunShellScript", "script": ["shutdown -h now"]})
    try:
        poller.result()
    except HttpResponseError:
        pass  # the agent may not get to report before the machine is gone; Azure behaves the same
    codes = kit.wait_for("self", lambda c: "PowerState/stopped" in c)
    assert codes == ["ProvisioningState/succeeded", "PowerState/stopped"]


def test_lists(kit: Kit, arm):
    kit.linux_vm("l1")
    kit.linux_vm("l2")
    vms = kit.compute.virtual_machines
    assert sorted(v.name for v in vms.list(kit.group)) == ["l1", "l2"]
    everywhere = {v.id.lower() for v in vms.list_all()}
    assert {v.id.lower() for v in vms.list(kit.group)} <= everywhere
    with_status = [v for v in vms.list_all(status_only="true") if v.name in ("l1", "l2")]
    assert [s.code for s in with_status[0].instance_view.statuses] == RUNNING
    assert {"l1", "l2"} <= {v.name for v in vms.list_by_location(kit.location)}


def test_reput_is_idempotent_and_image_is_immutable(kit: Kit):
    body = kit.linux_body(kit.nic())
    first = kit.create("same", body)
    again = kit.create("same", body)  # a retried create
    assert again.vm_id == first.vm_id and again.provisioning_state == "Succeeded"
    tagged = dict(body, tags={"stage": "customised"})
    assert kit.create("same", tagged).tags == {"stage": "customised"}
    changed = kit.linux_body(body["properties"]["networkProfile"]["networkInterfaces"][0]["id"], image=dict(DEBIAN_GEN2))
    with pytest.raises(ResourceExistsError) as err:
        kit.create("same", changed)
    assert error_of(err.value) == (
        409, "PropertyChangeNotAllowed", "Changing property 'imageReference' is not allowed.", "imageReference")


def test_update_tags_with_patch(kit: Kit):
    kit.linux_vm("patched")
    vm = kit.compute.virtual_machines.begin_update(kit.group, "patched", {"tags": {"a": "b"}}).result()
    assert vm.tags == {"a": "b"} and vm.provisioning_state == "Succeeded"


@pytest.mark.azure
def test_delete_detaches_the_nic_and_keeps_the_os_disk_by_default(kit: Kit, arm):
    vm = kit.linux_vm("gone")
    disk_name = vm.storage_profile.os_disk.name
    kit.compute.virtual_machines.begin_delete(kit.group, "gone").result()
    with pytest.raises(ResourceNotFoundError):
        kit.compute.virtual_machines.get(kit.group, "gone")
    assert arm.network.network_interfaces.get(kit.group, "gone-nic").virtual_machine is None
    disk = kit.compute.disks.get(kit.group, disk_name)
    assert disk.disk_state == "Unattached" and disk.managed_by is None
    kit.compute.disks.begin_delete(kit.group, disk_name).result()
    with pytest.raises(ResourceNotFoundError):
        kit.compute.disks.get(kit.group, disk_name)
    # deleting what is not there is fine
    kit.compute.virtual_machines.begin_delete(kit.group, "gone").result()


def test_delete_option_delete_removes_the_disk(kit: Kit):
    vm = kit.create("tidy", kit.linux_body(kit.nic(), os_disk={"deleteOption": "Delete", "name": "tidy-os"}))
    assert vm.storage_profile.os_disk.name == "tidy-os"
    with pytest.raises(ResourceExistsError) as err:
        kit.compute.disks.begin_delete(kit.group, "tidy-os").result()
    assert err.value.error.code == "OperationNotAllowed"
    kit.compute.virtual_machines.begin_delete(kit.group, "tidy").result()
    with pytest.raises(ResourceNotFoundError):
        kit.compute.disks.get(kit.group, "tidy-os")


def test_nic_in_use_by_another_vm(kit: Kit):
    nic = kit.nic()
    kit.create("owner", kit.linux_body(nic))
    with pytest.raises(HttpResponseError) as err:
        kit.create("thief", kit.linux_body(nic))
    assert err.value.error.code == "NicInUse"


def test_injected_allocation_failure(kit: Kit, faults):
    faults.add_fault(match="Microsoft.Compute/virtualMachines/write", kind="lro_failure", code="AllocationFailed",
                     message="Allocation failed. We do not have sufficient capacity for the requested VM size.",
                     count=1)
    body = kit.linux_body(kit.nic())
    with pytest.raises(HttpResponseError) as err:
        kit.create("unlucky", body)
    assert err.value.error.code == "AllocationFailed"
    assert "sufficient capacity" in err.value.error.message
    vm = kit.compute.virtual_machines.get(kit.group, "unlucky")
    assert vm.provisioning_state == "Failed"
    assert kit.statuses("unlucky")[0] == "ProvisioningState/failed/AllocationFailed"
    # the pipeline's retry PUTs the same body again: Azure tries to bring the VM up once more
    retried = kit.create("unlucky", body)
    assert retried.provisioning_state == "Succeeded" and retried.vm_id == vm.vm_id
    assert kit.statuses("unlucky") == RUNNING
    kit.compute.virtual_machines.begin_delete(kit.group, "unlucky").result()


def test_group_delete_removes_vms_and_their_guests(arm, location, ssh_public_key, local_azure):
    name = f"test-{uuid.uuid4().hex[:10]}"
    arm.resources.resource_groups.create_or_update(name, {"location": location})
    kit = Kit(arm, name, location, ssh_public_key)
    vm = kit.linux_vm("doomed")
    assert vm.id.lower() in _guests(local_azure)
    arm.resources.resource_groups.begin_delete(name).result()
    with pytest.raises(ResourceNotFoundError):
        kit.compute.virtual_machines.get(name, "doomed")
    inventory = local_azure.ops("GET", "inventory")["value"]
    assert not [r for r in inventory if r["id"].lower().startswith(vm.id.lower().rsplit("/providers/", 1)[0])]
    assert vm.id.lower() not in _guests(local_azure)


def test_the_guest_listens_on_the_public_ip_of_the_primary_nic(kit: Kit, arm, local_azure):
    vm = kit.linux_vm("addressed")
    ip = arm.network.public_ip_addresses.get(kit.group, "addressed-nic-ip").ip_address
    guest = local_azure.ops("GET", "guests")["value"]
    assert [g["address"] for g in guest if g["vm_id"].lower() == vm.id.lower()] == [ip]


def _guests(local_azure) -> dict[str, dict]:
    """The guests the runtime holds (/_emulator/guests), by lower-cased VM id."""
    return {g["vm_id"].lower(): g for g in local_azure.ops("GET", "guests")["value"]}


def test_in_between_states_with_azure_like_durations(kit: Kit, local_azure):
    """With Azure's durations scaled down (not to zero), the instance view shows each transition."""
    nic = kit.nic()
    vms = kit.compute.virtual_machines
    local_azure.settings(time_factor=0.02)  # a 45 s boot takes 0.9 s
    try:
        poller = vms.begin_create_or_update(kit.group, "slow", kit.linux_body(nic))
        assert kit.statuses("slow") == ["ProvisioningState/creating", "PowerState/starting"]
        assert kit.compute.virtual_machines.instance_view(kit.group, "slow").vm_agent.statuses[0].display_status == (
            "Not Ready")
        assert poller.result().provisioning_state == "Succeeded"
        assert kit.statuses("slow") == RUNNING

        poller = vms.begin_deallocate(kit.group, "slow")
        assert kit.statuses("slow") == ["ProvisioningState/updating", "PowerState/deallocating"]
        poller.result()
        assert kit.statuses("slow") == ["ProvisioningState/succeeded", "PowerState/deallocated"]

        poller = vms.begin_start(kit.group, "slow")
        assert kit.statuses("slow") == ["ProvisioningState/updating", "PowerState/starting"]
        poller.result()

        poller = vms.begin_power_off(kit.group, "slow")
        assert kit.statuses("slow") == ["ProvisioningState/updating", "PowerState/stopping"]
        poller.result()
        assert kit.statuses("slow") == ["ProvisioningState/succeeded", "PowerState/stopped"]
    finally:
        local_azure.settings(time_factor=0)
