"""Network interfaces: ip configurations in subnets (private addresses), public IPs and NSGs they
point at, and the VM they belong to.

Every reference a NIC makes has a back-reference kept here: the subnet lists the ip
configuration (and holds its private address), the public IP names it, the NSG lists the NIC.
Compute attaches and detaches NICs through ``attach`` / ``detach`` (re-exported by models.py).
"""

from __future__ import annotations

import random
from typing import Any

from emulator.core import lifecycle
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.ids import parse
from emulator.core.responses import tags_of
from emulator.core.store import Resource
from emulator.services.network import nsgs, publicips, vnets
from emulator.services.network.common import (
    IPCONFIG,
    NIC,
    NSG,
    PIP,
    SUBNET,
    begin,
    child_not_found,
    duplicate_name,
    get_top,
    invalid_reference,
    is_type,
    location_for_update,
    new_guid,
    properties_of,
    ref_of,
    require_group,
    resolve,
    same_id,
    save,
    set_tags,
    top_id,
    validate_name,
)

_ECHO = ("enableAcceleratedNetworking", "enableIPForwarding", "disableTcpStateTracking", "nicType", "auxiliaryMode",
         "auxiliarySku", "deleteOption")
_DEFAULTS: dict[str, Any] = {
    "enableAcceleratedNetworking": False, "enableIPForwarding": False, "disableTcpStateTracking": False,
    "nicType": "Standard", "auxiliaryMode": "None", "auxiliarySku": "None", "vnetEncryptionSupported": False,
    "hostedWorkloads": [], "tapConfigurations": [],
}


def _config_refs(item: dict[str, Any], index: int) -> tuple[str | None, str | None]:
    props = properties_of(item)
    path = f"properties.ipConfigurations[{index}].properties"
    subnet = ref_of(props.get("subnet"), f"{path}.subnet")
    if subnet is None:
        raise ArmError(
            "Cannot parse the request.",
            code="InvalidRequestFormat",
            details=[{"code": "MissingJsonReferenceId", "message": f"Value for reference id is missing. Path {path}.subnet."}],
        )
    return subnet, ref_of(props.get("publicIPAddress"), f"{path}.publicIPAddress")


def put_nic(ctx: Context, group: str, name: str, body: dict[str, Any]) -> tuple[Resource, bool]:
    validate_name(name)
    group = require_group(ctx, group)
    nic_id = top_id(ctx, group, NIC, name)
    existing = ctx.store.get(nic_id)
    location = location_for_update(existing, body, name, group)
    tags = tags_of(body)
    props = properties_of(body)
    items = props.get("ipConfigurations")
    if not isinstance(items, list) or not items:
        raise ArmError(
            f"Network interface {nic_id} must have at least one IP configuration.",
            code="NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
        )

    # validate everything before touching any other resource
    configs: list[dict[str, Any]] = []
    seen_pips: dict[str, str] = {}
    for index, item in enumerate(items):
        item = item or {}
        config_name = str(item.get("name") or "")
        validate_name(config_name)
        if any(c["name"].lower() == config_name.lower() for c in configs):
            raise duplicate_name(nic_id, config_name)
        config_id = f"{nic_id}/ipConfigurations/{config_name}"
        subnet_ref, pip_ref = _config_refs(item, index)
        subnet = resolve(ctx, subnet_ref, SUBNET, nic_id, location)  # type: ignore[arg-type]
        pip = None
        if pip_ref is not None:
            pip = resolve(ctx, pip_ref, PIP, nic_id, location)
            other = publicips.in_use_by_other(pip, config_id)
            if other and other.lower().startswith(nic_id.lower() + "/ipconfigurations/"):
                other = None  # this NIC's own earlier ip configuration: it is being replaced
            other = other or seen_pips.get(pip.id.lower())
            if other:
                raise ArmError(
                    f"IP configuration {config_id} is referencing public IP address {pip.id} that is already "
                    f"allocated to resource {other}.",
                    code="PublicIPAddressInUse",
                )
            seen_pips[pip.id.lower()] = config_id
        cprops = properties_of(item)
        method = str(cprops.get("privateIPAllocationMethod") or "Dynamic")
        if method.lower() not in ("static", "dynamic"):
            raise ArmError(
                f"The value '{method}' of privateIPAllocationMethod is invalid. Allowed values: Dynamic, Static.",
                code="InvalidParameter", target=f"properties.ipConfigurations[{index}].properties.privateIPAllocationMethod",
            )
        method = method.capitalize()
        static = cprops.get("privateIPAddress") if method == "Static" else None
        if method == "Static" and not static:
            raise ArmError(
                f"IP configuration {config_id} has privateIPAllocationMethod Static but no privateIPAddress.",
                code="PrivateIPAddressIsNullOrEmpty",
            )
        configs.append({
            "name": config_name, "id": config_id, "subnet": subnet.id, "pip": pip.id if pip else None,
            "method": method, "static": static, "primary": cprops.get("primary"),
        })
    primaries = [c for c in configs if c["primary"]]
    if len(primaries) > 1:
        raise ArmError(
            f"Network interface {nic_id} has more than one primary IP configuration.",
            code="OnlyOnePrimaryIpConfigurationAllowedPerNic",
        )
    if not primaries:
        configs[0]["primary"] = True
    vnets_used = {c["subnet"].lower().rsplit("/subnets/", 1)[0] for c in configs}
    if len(vnets_used) > 1:
        raise ArmError(
            f"Network interface {nic_id} has IP configurations in subnets of different virtual networks.",
            code="IpConfigurationsOnSameNicCannotUseDifferentVnets",
        )
    nsg_ref = ref_of(props.get("networkSecurityGroup"), "properties.networkSecurityGroup")
    nsg_id = resolve(ctx, nsg_ref, NSG, nic_id, location).id if nsg_ref else None

    # release what the old body held, then take what the new one needs
    previous: dict[str, tuple[str, str]] = {}
    if existing is not None:
        for old in existing.properties.get("ipConfigurations") or []:
            oprops = old.get("properties") or {}
            subnet_id = (oprops.get("subnet") or {}).get("id")
            previous[old["id"].lower()] = (str(subnet_id or "").lower(), str(oprops.get("privateIPAddress") or ""))
        _unlink(ctx, existing, keep_pips={c["pip"].lower() for c in configs if c["pip"]})

    wire: list[dict[str, Any]] = []
    for config in sorted(configs, key=lambda c: c["method"] != "Static"):  # static addresses first
        old_subnet, old_address = previous.get(config["id"].lower(), ("", ""))
        prefer = old_address if old_subnet == config["subnet"].lower() else None
        address = vnets.reserve_private(ctx, config["subnet"], config["id"], static=config["static"], prefer=prefer)
        cprops = {
            "provisioningState": "Updating",
            "privateIPAddress": address,
            "privateIPAllocationMethod": config["method"],
            "privateIPAddressVersion": "IPv4",
            "subnet": {"id": config["subnet"]},
            "primary": bool(config["primary"]),
        }
        if config["pip"]:
            cprops["publicIPAddress"] = {"id": config["pip"]}
        wire.append({"id": config["id"], "name": config["name"], "type": IPCONFIG, "properties": cprops})
    wire.sort(key=lambda w: [c["id"] for c in configs].index(w["id"]))

    nic = existing or Resource(id=nic_id, type=NIC, body={}, internal={})
    old_props = nic.properties
    nic.body = {"id": nic_id, "name": name, "type": NIC, "location": location}
    set_tags(nic.body, tags)
    out: dict[str, Any] = {"resourceGuid": old_props.get("resourceGuid") or new_guid(), "ipConfigurations": wire}
    dns_in = props.get("dnsSettings") or {}
    dns: dict[str, Any] = {"dnsServers": list(dns_in.get("dnsServers") or []), "appliedDnsServers": []}
    suffix = vnets.dns_suffix_of(ctx, configs[0]["subnet"])
    if suffix:
        dns["internalDomainNameSuffix"] = suffix
    if dns_in.get("internalDnsNameLabel"):
        dns["internalDnsNameLabel"] = dns_in["internalDnsNameLabel"]
    out["dnsSettings"] = dns
    for key, default in _DEFAULTS.items():
        out[key] = props.get(key, default) if key in _ECHO else default
    for key in _ECHO:
        if key not in out and props.get(key) is not None:
            out[key] = props[key]
    if nsg_id:
        out["networkSecurityGroup"] = {"id": nsg_id}
    for key in ("virtualMachine", "primary", "macAddress"):
        if old_props.get(key) is not None:
            out[key] = old_props[key]
    nic.body["properties"] = out
    begin(nic)
    save(ctx, nic)
    _link(ctx, nic)
    return nic, existing is None


def _pips_of(nic: Resource) -> list[tuple[str, str]]:
    """(public IP id, ip configuration id) for each ip configuration that has a public IP."""
    out = []
    for config in nic.properties.get("ipConfigurations") or []:
        pip = ((config.get("properties") or {}).get("publicIPAddress") or {}).get("id")
        if pip:
            out.append((str(pip), str(config["id"])))
    return out


def _link(ctx: Context, nic: Resource) -> None:
    for pip_id, config_id in _pips_of(nic):
        publicips.associate(ctx, pip_id, config_id, add=True)
    nsgs.associate(ctx, (nic.properties.get("networkSecurityGroup") or {}).get("id"), "networkInterfaces", nic.id,
                   add=True)


def _unlink(ctx: Context, nic: Resource, *, keep_pips: set[str] | None = None) -> None:
    """Drop every back-reference ``nic`` has (private addresses, public IPs, NSG)."""
    keep = keep_pips or set()
    for config in nic.properties.get("ipConfigurations") or []:
        cprops = config.get("properties") or {}
        vnets.release_private(ctx, (cprops.get("subnet") or {}).get("id"), config["id"])
        pip_id = (cprops.get("publicIPAddress") or {}).get("id")
        if pip_id and pip_id.lower() not in keep:
            publicips.associate(ctx, pip_id, config["id"], add=False)
    nsgs.associate(ctx, (nic.properties.get("networkSecurityGroup") or {}).get("id"), "networkInterfaces", nic.id,
                   add=False)


def begin_delete_nic(ctx: Context, group: str, name: str) -> Resource | None:
    group = require_group(ctx, group)
    nic = ctx.store.get(top_id(ctx, group, NIC, name))
    if nic is None:
        return None
    ensure_detached(nic)
    begin(nic, "Deleting")
    save(ctx, nic)
    return nic


def ensure_detached(nic: Resource) -> None:
    vm = (nic.properties.get("virtualMachine") or {}).get("id")
    if vm:
        raise ArmError(
            f"Network Interface {nic.id} is used by existing resource {vm}. In order to delete the network interface, "
            "it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
            code="NicInUse",
        )


def get_ip_configuration(ctx: Context, group: str, nic_name: str, name: str) -> dict[str, Any]:
    nic = get_top(ctx, group, NIC, nic_name)
    for config in nic.properties.get("ipConfigurations") or []:
        if config["name"].lower() == name.lower():
            return dict(config)
    raise child_not_found(f"{nic.id}/ipConfigurations/{name}")


# compute's side ------------------------------------------------------------------------------
def lookup(ctx: Context, nic_id: str, *, referenced_by: str | None = None) -> Resource:
    """The NIC ``nic_id`` names, or the network RP's InvalidResourceReference naming it."""
    try:
        parse(nic_id)
    except ValueError as exc:
        raise invalid_reference(nic_id, referenced_by) from exc
    nic = ctx.store.get(nic_id)
    if nic is None or not is_type(nic, NIC):
        raise invalid_reference(nic_id, referenced_by)
    return nic


def attach(ctx: Context, nic_id: str, vm_id: str, *, primary: bool = True) -> None:
    nic = lookup(ctx, nic_id, referenced_by=vm_id)
    current = (nic.properties.get("virtualMachine") or {}).get("id")
    if current and not same_id(current, vm_id):
        raise ArmError(f"Network Interface {nic.id} is used by existing VM {current}.", code="NicInUse")
    nic.properties["virtualMachine"] = {"id": vm_id}
    nic.properties["primary"] = primary
    nic.properties.setdefault("macAddress", _mac())
    save(ctx, nic)
    for pip_id, _config in _pips_of(nic):
        publicips.refresh_by_id(ctx, pip_id)


def detach(ctx: Context, nic_id: str) -> None:
    nic = ctx.store.get(nic_id)
    if nic is None or not nic.properties.get("virtualMachine"):
        return
    nic.properties.pop("virtualMachine", None)
    nic.properties.pop("primary", None)
    save(ctx, nic)
    for pip_id, _config in _pips_of(nic):
        publicips.refresh_by_id(ctx, pip_id)


def public_address(ctx: Context, nic_id: str) -> str | None:
    nic = lookup(ctx, nic_id)
    configs = sorted(nic.properties.get("ipConfigurations") or [],
                     key=lambda c: not (c.get("properties") or {}).get("primary"))
    for config in configs:
        pip_id = ((config.get("properties") or {}).get("publicIPAddress") or {}).get("id")
        pip = ctx.store.get(pip_id) if pip_id else None
        if pip is not None and pip.properties.get("ipAddress"):
            return str(pip.properties["ipAddress"])
    return None


def _mac() -> str:
    """Azure's NIC MAC addresses carry Microsoft's 00-0D-3A prefix."""
    return "00-0D-3A-" + "-".join(f"{random.randrange(256):02X}" for _ in range(3))


@lifecycle.on_remove(NIC)
def _nic_removed(ctx: Context, nic: Resource) -> None:
    _unlink(ctx, nic)
