"""The network model functions compute calls (attach/detach, public address, get_nic) and the address pool.

These run in-process on a store of their own: attaching a NIC to a VM has no network API of its
own, it happens inside compute's VM calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.core import lifecycle, lro
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.store import Resource
from emulator.server import make_context
from emulator.services.network import addresses, models
from emulator.services.resources.models import put_group

GROUP = "rg"
VM = "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"


def _settled(ctx: Context, result: tuple[Any, ...]) -> Resource:
    """Finish a PUT the way the service does: through an operation and its completion handler."""
    resource: Resource = result[0]
    op = lro.start(ctx, provider="network", location="westeurope", handler=models.PUT_DONE,
                   args={"id": resource.id, "token": resource.internal["pending"]})
    lro.settle(ctx, op)
    found = ctx.store.get(resource.id)
    assert found is not None and found.properties["provisioningState"] == "Succeeded"
    return found


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = make_context(tmp_path / "state")
    put_group(context, GROUP, {"location": "westeurope"}, {})
    yield context
    context.store.close()


def _vm(ctx: Context, name: str) -> str:
    return VM.format(sub=ctx.subscription, name=name)


def _network(ctx: Context, *, pip: dict[str, Any] | None = None) -> tuple[Resource, Resource | None]:
    vnet = {"location": "westeurope", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
    _settled(ctx, models.put_vnet(ctx, GROUP, "vnet", vnet))
    subnet = models.get_subnet(ctx, GROUP, "vnet", "default")
    public = None
    config: dict[str, Any] = {"subnet": {"id": subnet.id}}
    if pip is not None:
        public = _settled(ctx, models.put_public_ip(ctx, GROUP, "pip", {"location": "westeurope", **pip}))
        config["publicIPAddress"] = {"id": public.id}
    nic_body = {"location": "westeurope", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": config}]}}
    nic = _settled(ctx, models.put_nic(ctx, GROUP, "nic", nic_body))
    return nic, public


def test_attach_detach_and_back_reference(ctx: Context) -> None:
    nic, _ = _network(ctx)
    vm = _vm(ctx, "vm1")
    models.attach_nic(ctx, nic.id, vm)
    got = models.get_nic(ctx, nic.id)
    assert got.properties["virtualMachine"] == {"id": vm}
    assert got.properties["primary"] is True
    assert got.properties["macAddress"].startswith("00-0D-3A-")
    models.attach_nic(ctx, nic.id, vm)  # the same VM again: fine (a VM PUT repeats)

    with pytest.raises(ArmError) as err:
        models.attach_nic(ctx, nic.id, _vm(ctx, "vm2"))
    assert (err.value.status, err.value.code) == (400, "NicInUse")
    assert nic.id in err.value.message and vm in err.value.message

    with pytest.raises(ArmError) as err:
        models.begin_delete_nic(ctx, GROUP, "nic")
    assert (err.value.status, err.value.code) == (400, "NicInUse")
    assert err.value.message.startswith(f"Network Interface {nic.id} is used by existing resource {vm}.")

    models.detach_nic(ctx, nic.id)
    assert "virtualMachine" not in models.get_nic(ctx, nic.id).properties
    models.attach_nic(ctx, nic.id, _vm(ctx, "vm2"))  # free again: another VM may take it
    models.detach_nic(ctx, nic.id)
    assert models.begin_delete_nic(ctx, GROUP, "nic") is not None
    models.detach_nic(ctx, nic.id + "-gone")  # tolerant: compute may clean up after the NIC went


def test_public_address_of_nic(ctx: Context) -> None:
    nic, pip = _network(ctx, pip={"sku": {"name": "Standard"}})
    assert pip is not None
    address = models.public_address_of_nic(ctx, nic.id)
    assert address == pip.properties["ipAddress"]
    assert address is not None and address.startswith("127.100.")
    assert addresses.public_pool(ctx)[address] == pip.id


def test_public_address_none_without_public_ip(ctx: Context) -> None:
    nic, _ = _network(ctx)
    assert models.public_address_of_nic(ctx, nic.id) is None


def test_dynamic_address_follows_vm_attachment(ctx: Context) -> None:
    nic, pip = _network(ctx, pip={"sku": {"name": "Basic"}, "properties": {"publicIPAllocationMethod": "Dynamic"}})
    assert pip is not None and "ipAddress" not in pip.properties
    assert models.public_address_of_nic(ctx, nic.id) is None
    models.attach_nic(ctx, nic.id, _vm(ctx, "vm1"))
    address = models.public_address_of_nic(ctx, nic.id)
    assert address is not None and address.startswith("127.100.")
    models.detach_nic(ctx, nic.id)
    assert models.public_address_of_nic(ctx, nic.id) is None
    assert address not in addresses.public_pool(ctx)


def test_get_nic_missing_is_invalid_reference(ctx: Context) -> None:
    missing = f"/subscriptions/{ctx.subscription}/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/gone"
    with pytest.raises(ArmError) as err:
        models.get_nic(ctx, missing)
    assert (err.value.status, err.value.code) == (400, "InvalidResourceReference")
    assert missing in err.value.message
    vm = _vm(ctx, "vm1")
    with pytest.raises(ArmError) as err:
        models.attach_nic(ctx, missing, vm)
    assert err.value.message.startswith(f"Resource {missing} referenced by resource {vm} was not found.")
    with pytest.raises(ArmError):
        models.get_nic(ctx, "garbage")
    with pytest.raises(ArmError):
        models.public_address_of_nic(ctx, missing)


def test_removing_a_public_ip_frees_its_address(ctx: Context) -> None:
    pip = _settled(ctx, models.put_public_ip(ctx, GROUP, "pip", {"location": "westeurope"}))
    address = pip.properties["ipAddress"]
    assert address in addresses.public_pool(ctx)
    lifecycle.remove(ctx, pip)
    assert address not in addresses.public_pool(ctx)


def test_group_cascade_order_leaves_no_dangling_state(ctx: Context) -> None:
    _nic, pip = _network(ctx, pip={})
    assert pip is not None
    for resource in sorted(ctx.store.in_group(GROUP), key=lambda r: r.id.count("/"), reverse=True):
        lifecycle.remove(ctx, resource)
    assert ctx.store.in_group(GROUP) == []
    assert addresses.public_pool(ctx) == {}


def test_pool_skips_network_and_broadcast_octets(ctx: Context) -> None:
    ctx.store.set_setting("network.public_ip_cursor", 254)
    assert addresses.allocate_public(ctx, "a", set()) == "127.100.0.254"
    assert addresses.allocate_public(ctx, "b", set()) == "127.100.1.1"
    assert addresses.allocate_public(ctx, "c", {"127.100.1.2"}) == "127.100.1.3"
    addresses.release_public(ctx, "127.100.1.1", "someone-else")
    assert "127.100.1.1" in addresses.public_pool(ctx), "only the owner releases an address"
    addresses.release_public(ctx, "127.100.1.1", "B")
    assert "127.100.1.1" not in addresses.public_pool(ctx)


def test_pool_wraps_and_never_hands_out_a_held_address(ctx: Context) -> None:
    ctx.store.set_setting("network.public_ip_cursor", 65535)  # 127.100.255.255, then wrap to .0.0
    held = {"127.100.0.1"}
    assert addresses.allocate_public(ctx, "a", held) == "127.100.0.2"


def test_delete_fails_if_the_subnet_got_used_meanwhile(ctx: Context) -> None:
    _settled(ctx, models.put_vnet(ctx, GROUP, "vnet", {"location": "westeurope", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}))
    deleting, _location = models.begin_delete_subnet(ctx, GROUP, "vnet", "default")
    assert deleting is not None
    # a NIC lands in the subnet before the delete settles (possible with real durations)
    subnet = models.get_subnet(ctx, GROUP, "vnet", "default")
    subnet.internal["ips"] = {"10.0.0.4": subnet.id + "-nic/ipConfigurations/x"}
    ctx.store.put(subnet)
    op = lro.start(ctx, provider="network", location="westeurope", handler=models.DELETE_DONE,
                   args={"id": subnet.id, "token": subnet.internal["pending"]})
    lro.settle(ctx, op)
    status = lro.status_body(ctx, op)
    assert status is not None and status[0] == "Failed"
    assert status[1]["error"]["code"] == "InUseSubnetCannotBeDeleted"
    after = models.get_subnet(ctx, GROUP, "vnet", "default")
    assert after.properties["provisioningState"] == "Failed"
