"""Virtual networks and subnets: address layout rules, private IP bookkeeping, in-use protection.

A subnet is a resource of its own (``.../virtualNetworks/{vnet}/subnets/{name}``) and appears
inline in its vnet; a vnet PUT's ``subnets`` list is the complete new set, as in Azure (a subnet
left out is deleted, which fails while something uses it). Each subnet keeps its allocated
private addresses in ``internal["ips"]`` ({address: ip configuration id}); ``ipConfigurations``
on the wire is derived from it.
"""

from __future__ import annotations

import ipaddress
import random
import string
from typing import Any

from emulator.core import lifecycle
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.responses import tags_of
from emulator.core.store import Resource
from emulator.services.network import addresses, nsgs
from emulator.services.network.addresses import Network
from emulator.services.network.common import (
    NSG,
    SUBNET,
    VNET,
    begin,
    child_not_found,
    duplicate_name,
    get_top,
    location_for_update,
    new_guid,
    properties_of,
    ref_of,
    require_group,
    resolve,
    same_id,
    save,
    set_tags,
    sync_parent,
    top_id,
    validate_name,
)

# Subnet properties echoed as given (everything else is computed or validated here).
_SUBNET_ECHO = ("serviceEndpoints", "defaultOutboundAccess", "sharingScope", "serviceEndpointPolicies")


def prefixes_of(props: dict[str, Any]) -> list[str]:
    if props.get("addressPrefixes"):
        return [str(p) for p in props["addressPrefixes"]]
    return [str(props["addressPrefix"])] if props.get("addressPrefix") else []


def _subnet_nets(props: dict[str, Any], subnet_id: str, subnet: str, vnet: str) -> list[Network]:
    raw = props.get("addressPrefixes") or ([props["addressPrefix"]] if props.get("addressPrefix") else [])
    if not isinstance(raw, list) or not raw:
        raise ArmError(f"Subnet '{subnet}' is not valid in virtual network '{vnet}'.", code="NetcfgInvalidSubnet")
    return [addresses.parse_prefix(p, subnet_id) for p in raw]


def _stored_nets(props: dict[str, Any]) -> list[Network]:
    return [ipaddress.ip_network(p) for p in prefixes_of(props)]


def _vnet_nets(vnet: Resource) -> list[Network]:
    space = vnet.properties.get("addressSpace") or {}
    return [ipaddress.ip_network(p) for p in space.get("addressPrefixes") or []]


def _check_layout(vnet: str, space: list[Network], new: list[tuple[str, list[Network]]],
                  others: list[tuple[str, list[Network]]]) -> None:
    """Every new subnet inside the vnet's address space and overlapping no other subnet."""
    placed = list(others)
    for name, nets in new:
        for net in nets:
            if not addresses.contained(net, space):
                raise ArmError(
                    f"Subnet '{name}' is not valid because its IP address range is outside the IP address range of "
                    f"virtual network '{vnet}'.",
                    code="NetcfgSubnetRangeOutsideVnet",
                )
            for _other, other_nets in placed:
                if any(addresses.overlaps(net, o) for o in other_nets):
                    raise ArmError(
                        f"Subnet '{name}' is not valid because its IP address range overlaps with that of an existing "
                        f"subnet in virtual network '{vnet}'.",
                        code="NetcfgSubnetRangesOverlap",
                    )
        placed.append((name, nets))


def _users(subnet: Resource) -> list[str]:
    return sorted(set((subnet.internal.get("ips") or {}).values()))


def ensure_subnet_unused(subnet: Resource) -> None:
    users = _users(subnet)
    if users:
        raise ArmError(
            f"Subnet {subnet.name} is in use by {' and '.join(users)} and cannot be deleted. In order to delete the "
            "subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
            code="InUseSubnetCannotBeDeleted",
        )


def _ensure_prefix_change_ok(subnet: Resource, nets: list[Network]) -> None:
    """Allocated addresses must stay inside a subnet whose prefix changes."""
    for address, user in (subnet.internal.get("ips") or {}).items():
        ip = ipaddress.ip_address(address)
        if not any(ip.version == n.version and ip in n for n in nets):
            raise ArmError(
                f"Subnet {subnet.name} is in use by {user} and cannot be updated.", code="InUseSubnetCannotBeUpdated"
            )


def _write_subnet(ctx: Context, vnet: Resource, name: str, props: dict[str, Any], nsg_id: str | None) -> Resource:
    subnet_id = f"{vnet.id}/subnets/{name}"
    existing = ctx.store.get(subnet_id)
    internal = existing.internal if existing is not None else {"ips": {}}
    subnet = Resource(id=subnet_id, type=SUBNET, body={}, internal=internal)
    out: dict[str, Any] = {}
    if props.get("addressPrefixes"):
        out["addressPrefixes"] = [str(p) for p in props["addressPrefixes"]]
    else:
        out["addressPrefix"] = str(props["addressPrefix"])
    old_nsg = (existing.properties.get("networkSecurityGroup") or {}).get("id") if existing else None
    if not same_id(old_nsg, nsg_id):
        nsgs.associate(ctx, old_nsg, "subnets", subnet_id, add=False)
        nsgs.associate(ctx, nsg_id, "subnets", subnet_id, add=True)
    if nsg_id:
        out["networkSecurityGroup"] = {"id": nsg_id}
    out["delegations"] = list(props.get("delegations") or [])
    out["privateEndpointNetworkPolicies"] = props.get("privateEndpointNetworkPolicies") or "Disabled"
    out["privateLinkServiceNetworkPolicies"] = props.get("privateLinkServiceNetworkPolicies") or "Enabled"
    for key in _SUBNET_ECHO:
        if key in props and props[key] is not None:
            out[key] = props[key]
    subnet.body = {"id": subnet_id, "name": name, "type": SUBNET, "properties": out}
    _render_ip_configurations(subnet)
    begin(subnet)
    save(ctx, subnet)
    return subnet


def _render_ip_configurations(subnet: Resource) -> None:
    users = _users(subnet)
    if users:
        subnet.properties["ipConfigurations"] = [{"id": u} for u in users]
    else:
        subnet.properties.pop("ipConfigurations", None)


def _subnet_nsg(ctx: Context, props: dict[str, Any], subnet_id: str, location: str, path: str) -> str | None:
    ref = ref_of(props.get("networkSecurityGroup"), f"{path}.networkSecurityGroup")
    return None if ref is None else resolve(ctx, ref, NSG, subnet_id, location).id


# vnets --------------------------------------------------------------------------------------
def put_vnet(ctx: Context, group: str, name: str, body: dict[str, Any]) -> tuple[Resource, bool]:
    validate_name(name, min_len=2, max_len=64)
    group = require_group(ctx, group)
    vnet_id = top_id(ctx, group, VNET, name)
    existing = ctx.store.get(vnet_id)
    location = location_for_update(existing, body, name, group)
    tags = tags_of(body)
    props = properties_of(body)
    space_prefixes = list((props.get("addressSpace") or {}).get("addressPrefixes") or [])
    space = [addresses.parse_prefix(p, vnet_id) for p in space_prefixes]

    wanted: list[tuple[str, dict[str, Any], list[Network]]] = []
    for item in props.get("subnets") or []:
        item = item or {}
        sub_name = str(item.get("name") or str(item.get("id") or "").rsplit("/", 1)[-1])
        validate_name(sub_name)
        if any(sub_name.lower() == w[0].lower() for w in wanted):
            raise duplicate_name(vnet_id, sub_name)
        sub_props = properties_of(item)
        wanted.append((sub_name, sub_props, _subnet_nets(sub_props, f"{vnet_id}/subnets/{sub_name}", sub_name, name)))
    _check_layout(name, space, [(n, nets) for n, _p, nets in wanted], [])

    current = {s.name.lower(): s for s in ctx.store.children(vnet_id, SUBNET)}
    keep = {n.lower() for n, _p, _nets in wanted}
    for key, subnet in current.items():
        if key not in keep:
            ensure_subnet_unused(subnet)
    for sub_name, _p, nets in wanted:
        if sub_name.lower() in current:
            _ensure_prefix_change_ok(current[sub_name.lower()], nets)
    nsg_ids = [
        _subnet_nsg(ctx, sub_props, f"{vnet_id}/subnets/{sub_name}", location, f"properties.subnets[{i}].properties")
        for i, (sub_name, sub_props, _nets) in enumerate(wanted)
    ]

    vnet = existing or Resource(id=vnet_id, type=VNET, body={}, internal={"dns_suffix": _dns_suffix()})
    old = vnet.properties
    vnet.body = {"id": vnet_id, "name": name, "type": VNET, "location": location}
    set_tags(vnet.body, tags)
    out: dict[str, Any] = {
        "resourceGuid": old.get("resourceGuid") or new_guid(),
        "addressSpace": {"addressPrefixes": [str(p) for p in space_prefixes]},
        "subnets": [],
        "virtualNetworkPeerings": [],
        "enableDdosProtection": bool(props.get("enableDdosProtection", False)),
        "privateEndpointVNetPolicies": props.get("privateEndpointVNetPolicies") or "Disabled",
    }
    if props.get("dhcpOptions") is not None:
        out["dhcpOptions"] = props["dhcpOptions"]
    vnet.body["properties"] = out
    begin(vnet)
    save(ctx, vnet)
    for key, subnet in current.items():
        if key not in keep:
            lifecycle.remove(ctx, subnet)
    for (sub_name, sub_props, _nets), nsg_id in zip(wanted, nsg_ids, strict=True):
        _write_subnet(ctx, vnet, sub_name, sub_props, nsg_id)
    return _reload(ctx, vnet_id), existing is None


def _dns_suffix() -> str:
    """The per-vnet internal DNS suffix Azure hands to NICs (``<26 letters>.ax.internal.cloudapp.net``)."""
    label = "".join(random.choices(string.ascii_lowercase, k=26))
    return f"{label}.ax.internal.cloudapp.net"


def dns_suffix_of(ctx: Context, subnet_id: str) -> str | None:
    vnet = ctx.store.get(subnet_id.rsplit("/", 2)[0])
    return None if vnet is None else vnet.internal.get("dns_suffix")


def _reload(ctx: Context, resource_id: str) -> Resource:
    found = ctx.store.get(resource_id)
    assert found is not None
    return found


def begin_delete_vnet(ctx: Context, group: str, name: str) -> Resource | None:
    group = require_group(ctx, group)
    vnet = ctx.store.get(top_id(ctx, group, VNET, name))
    if vnet is None:
        return None
    for subnet in ctx.store.children(vnet.id, SUBNET):
        ensure_subnet_unused(subnet)
    begin(vnet, "Deleting")
    save(ctx, vnet)
    return vnet


# subnets as child resources -----------------------------------------------------------------
def get_subnet(ctx: Context, group: str, vnet_name: str, name: str) -> Resource:
    vnet = get_top(ctx, group, VNET, vnet_name)
    subnet = ctx.store.get(f"{vnet.id}/subnets/{name}")
    if subnet is None:
        raise child_not_found(f"{vnet.id}/subnets/{name}")
    return subnet


def list_subnets(ctx: Context, group: str, vnet_name: str) -> list[Resource]:
    vnet = get_top(ctx, group, VNET, vnet_name)
    return ctx.store.children(vnet.id, SUBNET)


def put_subnet(ctx: Context, group: str, vnet_name: str, name: str, body: dict[str, Any]) -> tuple[Resource, bool, str]:
    """Create or replace one subnet; returns (subnet, created, the vnet's region)."""
    validate_name(name)
    vnet = get_top(ctx, group, VNET, vnet_name)
    subnet_id = f"{vnet.id}/subnets/{name}"
    props = properties_of(body)
    nets = _subnet_nets(props, subnet_id, name, vnet.name)
    others = [(s.name, _stored_nets(s.properties)) for s in ctx.store.children(vnet.id, SUBNET)
              if not same_id(s.id, subnet_id)]
    _check_layout(vnet.name, _vnet_nets(vnet), [(name, nets)], others)
    existing = ctx.store.get(subnet_id)
    if existing is not None:
        _ensure_prefix_change_ok(existing, nets)
    location = str(vnet.body["location"])
    nsg_id = _subnet_nsg(ctx, props, subnet_id, location, "properties")
    subnet = _write_subnet(ctx, vnet, name, props, nsg_id)
    return subnet, existing is None, location


def begin_delete_subnet(ctx: Context, group: str, vnet_name: str, name: str) -> tuple[Resource | None, str]:
    """Start deleting a subnet; (None, "") when there is nothing to delete (its vnet may be gone too)."""
    vnet = ctx.store.get(top_id(ctx, require_group(ctx, group), VNET, vnet_name))
    if vnet is None:
        return None, ""
    subnet = ctx.store.get(f"{vnet.id}/subnets/{name}")
    if subnet is not None:
        ensure_subnet_unused(subnet)
        begin(subnet, "Deleting")
        save(ctx, subnet)
    return subnet, str(vnet.body["location"])


# private addresses (used by NICs) -----------------------------------------------------------
def reserve_private(ctx: Context, subnet_id: str, config_id: str, *, static: str | None, prefer: str | None) -> str:
    """Hold a private address of the subnet for an ip configuration: ``static`` exactly, else the
    address it already had (``prefer``) if still free, else the lowest free one."""
    subnet = ctx.store.get(subnet_id)
    assert subnet is not None
    ips: dict[str, str] = dict(subnet.internal.get("ips") or {})
    taken = {a for a, owner in ips.items() if not same_id(owner, config_id)}
    net = addresses.first_ipv4(_stored_nets(subnet.properties))
    if net is None:
        raise ArmError(f"Subnet {subnet.name} has no IPv4 address prefix to allocate from.", code="SubnetIsFull")
    if static is not None:
        address = _check_static(net, static, subnet, config_id, ips, taken)
    elif prefer and prefer not in taken and addresses.usable(net, prefer):
        address = prefer
    else:
        found = addresses.next_private(net, taken)
        if found is None:
            raise ArmError(
                f"Subnet {subnet.name} with address prefix {net} does not have enough capacity for 1 IP addresses.",
                code="SubnetIsFull",
            )
        address = found
    ips = {a: o for a, o in ips.items() if not same_id(o, config_id)}
    ips[address] = config_id
    subnet.internal["ips"] = ips
    _render_ip_configurations(subnet)
    save(ctx, subnet)
    return address


def _check_static(net: ipaddress.IPv4Network, address: str, subnet: Resource, config_id: str,
                  ips: dict[str, str], taken: set[str]) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError as exc:
        raise ArmError(
            f"IP configuration {config_id} has an invalid private IP address {address}.", code="InvalidPrivateIPAddress"
        ) from exc
    if ip not in net:
        raise ArmError(
            f"IP configuration {config_id} is using the private IP address {address} which is not in the address "
            f"space of the subnet {subnet.id} ({net}).",
            code="PrivateIPAddressNotInSubnet",
        )
    if not addresses.usable(net, address):
        raise ArmError(
            f"IP configuration {config_id} is using the private IP address {address} which is reserved by Azure in "
            f"subnet {subnet.id}: the first four addresses and the last address of a subnet are reserved.",
            code="PrivateIPAddressInReservedRange",
        )
    if str(ip) in taken:
        raise ArmError(
            f"IP configuration {config_id} is using the private IP address {address} which is already allocated to "
            f"resource {ips[str(ip)]}.",
            code="PrivateIPAddressInUse",
        )
    return str(ip)


def release_private(ctx: Context, subnet_id: str | None, config_id: str) -> None:
    if not subnet_id:
        return
    subnet = ctx.store.get(subnet_id)
    if subnet is None:
        return
    ips = {a: o for a, o in (subnet.internal.get("ips") or {}).items() if not same_id(o, config_id)}
    if len(ips) != len(subnet.internal.get("ips") or {}):
        subnet.internal["ips"] = ips
        _render_ip_configurations(subnet)
        save(ctx, subnet)


# leaving -----------------------------------------------------------------------------------
@lifecycle.on_remove(VNET)
def _vnet_removed(ctx: Context, vnet: Resource) -> None:
    for subnet in ctx.store.children(vnet.id, SUBNET):
        lifecycle.remove(ctx, subnet)


@lifecycle.on_remove(SUBNET)
def _subnet_removed(ctx: Context, subnet: Resource) -> None:
    nsgs.associate(ctx, (subnet.properties.get("networkSecurityGroup") or {}).get("id"), "subnets", subnet.id,
                   add=False)
    sync_parent(ctx, subnet.id, without=subnet.id)
