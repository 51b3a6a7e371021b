"""ComputeHook against the local Azure (simulated guests): one VM per name, Run Command, capture."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import paramiko
import pytest

from image_factory.credentials import ssh_key_pair
from image_factory.hooks.compute import ComputeHook
from image_factory.hooks.network import NetworkHook
from image_factory.hooks.resources import ResourceGroupHook
from tests.localazure import LocalAzure
from tests.plugins.image_factory.hooks.conftest import inventory, request_seq, requests_since

LOCATION = "westeurope"
PUBLISHER, OFFER, SKU = "Debian", "debian-12", "12-gen2"
DEBIAN = {"publisher": PUBLISHER, "offer": OFFER, "sku": SKU}


@pytest.fixture(scope="module")
def hook(azure_conn: str) -> ComputeHook:
    return ComputeHook(azure_conn)


@pytest.fixture(scope="module")
def build_group(azure_conn: str) -> Iterator[str]:
    """One group for the module's VMs (module scope: the VM of several tests is built once)."""
    rg = ResourceGroupHook(azure_conn)
    name = f"test-compute-{uuid.uuid4().hex[:8]}"
    rg.ensure_resource_group(name, LOCATION, {"factory": "tests"})
    yield name
    rg.resources.resource_groups.begin_delete(name).result()


def _nic(azure_conn: str, group: str, run: str) -> dict[str, str]:
    net = NetworkHook(azure_conn)
    return net.ensure_build_network(
        group,
        LOCATION,
        vnet=f"vnet-{run}",
        subnet="build",
        nsg=f"nsg-{run}",
        public_ip=f"pip-{run}",
        nic=f"nic-{run}",
        allow_from=net.allowed_source(),
        ports=[22],
        tags={"run": run},
    )


def _vm_args(run: str, nic_id: str, version: str) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "size": "Standard_D2s_v5",
        "image": {**DEBIAN, "version": version},
        "os_type": "Linux",
        "computer_name": f"build-{run}",
        "admin_username": "builder",
        "ssh_public_key": ssh_key_pair("hook-tests-secret-0123456789", run).public_openssh,
        "nic_id": nic_id,
        "tags": {"run": run},
    }


@pytest.fixture(scope="module")
def linux_vm(hook: ComputeHook, azure_conn: str, build_group: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    network = _nic(azure_conn, build_group, run)
    made = hook.ensure_vm(build_group, f"vm-{run}", **_vm_args(run, network["nic_id"], "latest"))
    return {"run": run, "name": f"vm-{run}", "made": made, **network}


def test_resolve_marketplace_version_latest_is_the_newest(hook: ComputeHook) -> None:
    listed = [v.name for v in hook.compute.virtual_machine_images.list(LOCATION, PUBLISHER, OFFER, SKU)]
    resolved = hook.resolve_marketplace_version(LOCATION, PUBLISHER, OFFER, SKU, "latest")
    assert resolved in listed and resolved != "latest"
    assert all(tuple(map(int, resolved.split("."))) >= tuple(map(int, v.split("."))) for v in listed)
    assert hook.resolve_marketplace_version(LOCATION, PUBLISHER, OFFER, SKU, listed[0]) == listed[0]


def test_vm_from_latest_records_the_resolved_version(
    hook: ComputeHook, build_group: str, linux_vm: dict[str, Any]
) -> None:
    assert linux_vm["made"]["created"] is True
    resolved = hook.resolve_marketplace_version(LOCATION, PUBLISHER, OFFER, SKU, "latest")
    ref = hook.image_reference(build_group, linux_vm["name"])
    assert ref["version"] == "latest" and ref["exact_version"] == resolved
    assert hook.vm_state(build_group, linux_vm["name"]) == {"provisioning_state": "Succeeded", "power_state": "running"}
    vm = hook.compute.virtual_machines.get(build_group, linux_vm["name"])
    assert vm.storage_profile.os_disk.delete_option == "Delete"
    assert vm.network_profile.network_interfaces[0].delete_option == "Detach"  # kept for a replacement VM


def test_ensure_vm_on_an_existing_vm_sends_no_put(
    hook: ComputeHook, local_azure: LocalAzure, build_group: str, linux_vm: dict[str, Any]
) -> None:
    seq = request_seq(local_azure)
    again = hook.ensure_vm(build_group, linux_vm["name"], **_vm_args(linux_vm["run"], linux_vm["nic_id"], "latest"))
    assert again == {"id": linux_vm["made"]["id"], "created": False}
    writes = [e for e in requests_since(local_azure, seq) if e["method"] in ("PUT", "PATCH", "POST", "DELETE")]
    assert writes == []
    assert len(inventory(local_azure, "Microsoft.Compute/virtualMachines", run=linux_vm["run"])) == 1


def test_vm_state_of_a_missing_vm_is_none(hook: ComputeHook, build_group: str) -> None:
    assert hook.vm_state(build_group, "vm-never-made") is None


def test_run_shell_returns_stdout_and_stderr(hook: ComputeHook, build_group: str, linux_vm: dict[str, Any]) -> None:
    out = hook.run_shell(build_group, linux_vm["name"], "echo hello from run command\necho oops >&2", windows=False)
    assert out["stdout"].strip() == "hello from run command"
    assert out["stderr"].strip() == "oops"


def test_ssh_host_key_is_the_key_sshd_presents(
    hook: ComputeHook, local_azure: LocalAzure, build_group: str, linux_vm: dict[str, Any]
) -> None:
    line = hook.ssh_host_key(build_group, linux_vm["name"])
    kind, blob = line.split(" ")
    assert kind == "ssh-ed25519" and blob.startswith("AAAA")
    address = NetworkHook(hook.azure_conn_id).public_ip_address(build_group, f"pip-{linux_vm['run']}")
    guest = next(g for g in local_azure.ops("GET", "guests")["value"] if g["address"] == address)
    transport = paramiko.Transport((address, int(guest["ports"]["ssh"])))
    try:
        transport.get_security_options().key_types = ["ssh-ed25519"]
        transport.start_client(timeout=30)
        presented = transport.get_remote_server_key()
    finally:
        transport.close()
    assert (presented.get_name(), presented.get_base64()) == (kind, blob)


def test_deallocate_generalize_capture_and_delete(
    hook: ComputeHook, local_azure: LocalAzure, azure_conn: str, build_group: str
) -> None:
    run = uuid.uuid4().hex[:8]
    name = f"vm-{run}"
    network = _nic(azure_conn, build_group, run)
    vm = hook.ensure_vm(build_group, name, **_vm_args(run, network["nic_id"], "latest"))
    os_disk = hook.compute.virtual_machines.get(build_group, name).storage_profile.os_disk.name

    hook.deallocate(build_group, name)
    assert hook.vm_state(build_group, name) == {"provisioning_state": "Succeeded", "power_state": "deallocated"}
    hook.generalize(build_group, name)
    view = hook.compute.virtual_machines.instance_view(build_group, name)
    assert "OSState/generalized" in [s.code for s in view.statuses or []]

    image_args = {"location": LOCATION, "vm_id": vm["id"], "hyper_v_generation": "V2", "tags": {"run": run}}
    image_id = hook.ensure_managed_image(build_group, f"img-{run}", **image_args)
    assert hook.ensure_managed_image(build_group, f"img-{run}", **image_args) == image_id
    assert [i["id"] for i in inventory(local_azure, "Microsoft.Compute/images", run=run)] == [image_id]
    image = hook.compute.images.get(build_group, f"img-{run}")
    assert image.hyper_v_generation == "V2" and image.storage_profile.os_disk.os_state == "Generalized"

    # a VM from the managed image (the ``{"id": …}`` form of ``image``)
    clone_net = _nic(azure_conn, build_group, f"{run}c")
    clone_args = {**_vm_args(f"{run}c", clone_net["nic_id"], "latest"), "image": {"id": image_id}}
    clone = hook.ensure_vm(build_group, f"vm-{run}c", **clone_args)
    assert clone["created"] is True
    assert str(hook.image_reference(build_group, f"vm-{run}c")["id"]).lower() == image_id.lower()
    assert hook.delete_vm(build_group, f"vm-{run}c") is True

    assert hook.delete_vm(build_group, name) is True
    assert hook.vm_state(build_group, name) is None
    disks = [d.name for d in hook.compute.disks.list_by_resource_group(build_group)]
    assert os_disk not in disks, "the OS disk must go with the VM"
    nic = hook.network.network_interfaces.get(build_group, f"nic-{run}")
    assert nic.virtual_machine is None, "the NIC is detached from the deleted VM (teardown deletes it)"
    assert hook.delete_vm(build_group, name) is False


def test_run_shell_on_windows_returns_stdout(hook: ComputeHook, azure_conn: str, build_group: str) -> None:
    run = uuid.uuid4().hex[:8]
    network = _nic(azure_conn, build_group, run)
    hook.ensure_vm(
        build_group,
        f"vm-{run}",
        location=LOCATION,
        size="Standard_D2s_v5",
        image={
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition",
            "version": "latest",
        },
        os_type="Windows",
        computer_name=f"win-{run}"[:15],
        admin_username="builder",
        admin_password="Local-Test-Passw0rd!",
        nic_id=network["nic_id"],
        tags={"run": run},
    )
    try:
        out = hook.run_shell(build_group, f"vm-{run}", "Write-Output 'hello from windows'", windows=True)
        assert out["stdout"].strip() == "hello from windows"
    finally:
        hook.delete_vm(build_group, f"vm-{run}")


def test_a_vm_that_failed_to_provision_is_replaced_not_kept(
    hook: ComputeHook, azure_conn: str, build_group: str, faults: Any
) -> None:
    from azure.core.exceptions import HttpResponseError

    run = uuid.uuid4().hex[:8]
    network = _nic(azure_conn, build_group, run)
    faults.add_fault(match="Microsoft.Compute/virtualMachines/write", kind="lro_failure", count=1,
                     code="OSProvisioningTimedOut", message="Injected: the guest never reported ready.")
    with pytest.raises(HttpResponseError, match="OSProvisioningTimedOut"):
        hook.ensure_vm(build_group, f"vm-{run}", **_vm_args(run, network["nic_id"], "latest"))
    assert (hook.vm_state(build_group, f"vm-{run}") or {}).get("provisioning_state") == "Failed"
    again = hook.ensure_vm(build_group, f"vm-{run}", **_vm_args(run, network["nic_id"], "latest"))
    assert again["created"] is True  # the retry made a working VM in place of the failed one
    assert (hook.vm_state(build_group, f"vm-{run}") or {}).get("provisioning_state") == "Succeeded"
    names = [vm.name for vm in hook.compute.virtual_machines.list(build_group)]
    assert names.count(f"vm-{run}") == 1
    hook.delete_vm(build_group, f"vm-{run}")


def test_a_vm_past_the_vcpu_quota_is_read_as_a_shortfall_to_wait_for(
    hook: ComputeHook, azure_conn: str, build_group: str, local_azure: LocalAzure
) -> None:
    from azure.core.exceptions import HttpResponseError

    from image_factory.errors import quota_exceeded

    run = uuid.uuid4().hex[:8]
    network = _nic(azure_conn, build_group, run)
    local_azure.ops("PUT", f"quotas/{LOCATION}", {"families": {"standardESv5Family": 0}})  # a family no test uses
    try:
        with pytest.raises(HttpResponseError) as refused:
            hook.ensure_vm(build_group, f"vm-{run}", **{**_vm_args(run, network["nic_id"], "latest"),
                                                        "size": "Standard_E2s_v5"})
    finally:
        local_azure.ops("PUT", f"quotas/{LOCATION}", {})
    assert quota_exceeded(refused.value) == {"quota": "standardESv5Family", "location": LOCATION, "limit": 0,
                                             "usage": 0, "needed": 2}
    assert hook.vm_state(build_group, f"vm-{run}") is None  # refused before anything was made
    assert quota_exceeded(ValueError("exceeding approved Total Regional Cores quota")) is None
