"""Microsoft.Network state, no HTTP: the public face of the network service.

The rules live in small modules (vnets, nsgs, publicips, nics); this module re-exports what the
handlers call, finishes the service's long-running operations, and offers compute the functions
it needs to wire a VM to its NICs:

- ``get_nic(ctx, nic_id, referenced_by=None)``: the NIC, or 400 InvalidResourceReference naming the id
  (and the referring resource, e.g. the VM, when given).
- ``attach_nic(ctx, nic_id, vm_id, primary=True)``: set the NIC's ``virtualMachine`` back-reference
  (400 NicInUse if another VM has it); a Dynamic public IP on the NIC gets its address now.
- ``detach_nic(ctx, nic_id)``: clear it, releasing Dynamic public addresses (no-op for a NIC that is gone).
- ``public_address_of_nic(ctx, nic_id)``: the loopback address of the NIC's public IP, where guests listen.
"""

from __future__ import annotations

from typing import Any

from emulator.core import lifecycle, lro
from emulator.core.context import Context
from emulator.core.responses import tags_of
from emulator.core.store import Resource
from emulator.services.network import nics, nsgs, publicips, vnets
from emulator.services.network.common import (
    DELETE_SECONDS,
    NIC,
    NSG,
    PIP,
    PUT_SECONDS,
    RULE,
    SUBNET,
    VNET,
    get_top,
    list_top,
    mark,
    region_of,
    save,
    set_tags,
)
from emulator.services.network.nsgs import (
    begin_delete_nsg,
    begin_delete_rule,
    get_default_rule,
    get_rule,
    list_rules,
    put_nsg,
    put_rule,
)
from emulator.services.network.publicips import begin_delete_public_ip, put_public_ip
from emulator.services.network.vnets import (
    begin_delete_subnet,
    begin_delete_vnet,
    get_subnet,
    list_subnets,
    put_subnet,
    put_vnet,
)

__all__ = [
    "DELETE_SECONDS", "NIC", "NSG", "PIP", "PUT_SECONDS", "RULE", "SUBNET", "VNET",
    "attach_nic", "begin_delete_nic", "begin_delete_nsg", "begin_delete_public_ip", "begin_delete_rule",
    "begin_delete_subnet", "begin_delete_vnet", "detach_nic", "get", "get_default_rule", "get_ip_configuration",
    "get_nic", "get_rule", "get_subnet", "list_all", "list_rules", "list_subnets", "public_address_of_nic",
    "put_nic", "put_nsg", "put_public_ip", "put_rule", "put_subnet", "put_vnet", "region_of", "update_tags",
]

PUT_DONE = "network.put"
DELETE_DONE = "network.delete"

put_nic = nics.put_nic
begin_delete_nic = nics.begin_delete_nic
get_ip_configuration = nics.get_ip_configuration


def get(ctx: Context, group: str, rtype: str, name: str) -> Resource:
    return get_top(ctx, group, rtype, name)


def list_all(ctx: Context, rtype: str, group: str | None = None) -> list[Resource]:
    """A type's resources in a group (ResourceGroupNotFound if it is missing) or the subscription."""
    return list_top(ctx, rtype, group)


def update_tags(ctx: Context, group: str, rtype: str, name: str, body: dict[str, Any]) -> Resource:
    """``PATCH`` with ``{"tags": ...}``: replaces the tags, synchronously."""
    resource = get_top(ctx, group, rtype, name)
    set_tags(resource.body, tags_of(body))
    save(ctx, resource)
    return resource


# compute's interface -----------------------------------------------------------------------
def get_nic(ctx: Context, nic_id: str, *, referenced_by: str | None = None) -> Resource:
    return nics.lookup(ctx, nic_id, referenced_by=referenced_by)


def attach_nic(ctx: Context, nic_id: str, vm_id: str, *, primary: bool = True) -> None:
    nics.attach(ctx, nic_id, vm_id, primary=primary)


def detach_nic(ctx: Context, nic_id: str) -> None:
    nics.detach(ctx, nic_id)


def public_address_of_nic(ctx: Context, nic_id: str) -> str | None:
    return nics.public_address(ctx, nic_id)


# finishing operations ------------------------------------------------------------------------
def _current(ctx: Context, args: dict[str, Any]) -> Resource | None:
    """The resource an operation is about, if that operation is still the latest one on it."""
    resource = ctx.store.get(args["id"])
    if resource is None or resource.internal.get("pending") != args["token"]:
        return None
    return resource


def _put_failed(ctx: Context, args: dict[str, Any]) -> None:
    resource = _current(ctx, args)
    if resource is not None:
        mark(ctx, resource, "Failed")


@lro.on_complete(PUT_DONE, _put_failed)
def _put_done(ctx: Context, args: dict[str, Any]) -> None:
    resource = _current(ctx, args)
    if resource is not None:
        mark(ctx, resource, "Succeeded")


def _delete_failed(ctx: Context, args: dict[str, Any]) -> None:
    resource = _current(ctx, args)
    if resource is not None:
        mark(ctx, resource, "Failed")


@lro.on_complete(DELETE_DONE, _delete_failed)
def _delete_done(ctx: Context, args: dict[str, Any]) -> None:
    resource = _current(ctx, args)
    if resource is not None:
        _recheck_delete(ctx, resource)
        lifecycle.remove(ctx, resource)


def _recheck_delete(ctx: Context, resource: Resource) -> None:
    """Something may have started using the resource while its delete was pending: then the delete fails."""
    rtype = resource.type.lower()
    if rtype == SUBNET.lower():
        vnets.ensure_subnet_unused(resource)
    elif rtype == VNET.lower():
        for subnet in ctx.store.children(resource.id, SUBNET):
            vnets.ensure_subnet_unused(subnet)
    elif rtype == NSG.lower():
        nsgs.ensure_unused(resource)
    elif rtype == PIP.lower():
        publicips.ensure_deletable(resource)
    elif rtype == NIC.lower():
        nics.ensure_detached(resource)
