"""Public IP addresses: SKU and allocation rules, the loopback address each one stands for, and the
back-reference to the NIC ip configuration that uses it.

Static addresses are held from creation until deletion. A Dynamic address exists, as in Azure,
only while the public IP is associated with a NIC that is attached to a VM; ``refresh`` applies
that rule whenever the association or the attachment changes.
"""

from __future__ import annotations

from typing import Any

from emulator.core import lifecycle
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.responses import tags_of
from emulator.core.store import Resource
from emulator.services.network import addresses
from emulator.services.network.common import (
    PIP,
    begin,
    location_for_update,
    new_guid,
    properties_of,
    require_group,
    same_id,
    save,
    set_tags,
    top_id,
    validate_name,
)

SKUS = ("Basic", "Standard")
TIERS = ("Regional", "Global")
METHODS = ("Static", "Dynamic")
_ECHO = ("dnsSettings", "ipTags", "ddosSettings", "deleteOption")


def _choice(value: Any, allowed: tuple[str, ...], what: str, target: str) -> str:
    for option in allowed:
        if isinstance(value, str) and option.lower() == value.lower():
            return option
    raise ArmError(
        f"The value '{value}' of {what} is invalid. Allowed values: {', '.join(allowed)}.",
        code="InvalidParameter",
        target=target,
    )


def put_public_ip(ctx: Context, group: str, name: str, body: dict[str, Any]) -> tuple[Resource, bool]:
    validate_name(name)
    group = require_group(ctx, group)
    pip_id = top_id(ctx, group, PIP, name)
    existing = ctx.store.get(pip_id)
    location = location_for_update(existing, body, name, group)
    tags = tags_of(body)
    props = properties_of(body)
    sku_in = body.get("sku") or {}
    sku = _choice(sku_in.get("name") or "Standard", SKUS, "sku.name", "sku.name")
    tier = _choice(sku_in.get("tier") or "Regional", TIERS, "sku.tier", "sku.tier")
    method = _choice(props.get("publicIPAllocationMethod") or ("Static" if sku == "Standard" else "Dynamic"),
                     METHODS, "publicIPAllocationMethod", "properties.publicIPAllocationMethod")
    if sku == "Standard" and method != "Static":
        raise ArmError(
            f"Standard sku publicIp {pip_id} must have AllocationMethod set to Static.",
            code="StandardSkuPublicIPAddressesMustBeStatic",
        )
    version = props.get("publicIPAddressVersion") or "IPv4"
    if str(version).lower() != "ipv4":
        raise ArmError(
            f"Public IP address {pip_id}: the local Azure serves IPv4 public addresses only (requested {version}).",
            code="InvalidParameter",
            target="properties.publicIPAddressVersion",
        )
    idle = props.get("idleTimeoutInMinutes", 4)
    if not isinstance(idle, int) or isinstance(idle, bool) or not 4 <= idle <= 30:
        raise ArmError(
            f"Idle timeout value {idle} for resource {pip_id} is invalid. Idle timeout should be between 4 and 30 "
            "minutes.",
            code="PublicIPIdleTimeoutIsOutOfRange",
        )

    pip = existing or Resource(id=pip_id, type=PIP, body={}, internal={})
    old = pip.properties
    pip.body = {"id": pip_id, "name": name, "type": PIP, "location": location, "sku": {"name": sku, "tier": tier}}
    set_tags(pip.body, tags)
    if body.get("zones"):
        pip.body["zones"] = list(body["zones"])
    out: dict[str, Any] = {
        "resourceGuid": old.get("resourceGuid") or new_guid(),
        "publicIPAddressVersion": "IPv4",
        "publicIPAllocationMethod": method,
        "idleTimeoutInMinutes": idle,
        "ipTags": [],
    }
    if old.get("ipAddress"):
        out["ipAddress"] = old["ipAddress"]
    if old.get("ipConfiguration"):
        out["ipConfiguration"] = old["ipConfiguration"]
    for key in _ECHO:
        if props.get(key) is not None:
            out[key] = props[key]
    label = (props.get("dnsSettings") or {}).get("domainNameLabel")
    if label:
        out["dnsSettings"] = {**out["dnsSettings"], "fqdn": f"{label}.{location}.cloudapp.azure.com"}
    if sku == "Standard" and "ddosSettings" not in out:
        out["ddosSettings"] = {"protectionMode": "VirtualNetworkInherited"}
    pip.body["properties"] = out
    begin(pip)
    save(ctx, pip)
    refresh(ctx, pip)
    return pip, existing is None


def begin_delete_public_ip(ctx: Context, group: str, name: str) -> Resource | None:
    group = require_group(ctx, group)
    pip = ctx.store.get(top_id(ctx, group, PIP, name))
    if pip is None:
        return None
    ensure_deletable(pip)
    begin(pip, "Deleting")
    save(ctx, pip)
    return pip


def ensure_deletable(pip: Resource) -> None:
    config = (pip.properties.get("ipConfiguration") or {}).get("id")
    if config:
        raise ArmError(
            f"Public IP address {pip.id} can not be deleted since it is still allocated to resource {config}. In "
            "order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn "
            "how to do this, see aka.ms/deletepublicip.",
            code="PublicIPAddressCannotBeDeleted",
        )


def _in_use_addresses(ctx: Context) -> set[str]:
    return {str(p.properties["ipAddress"]) for p in ctx.store.of_type(PIP) if p.properties.get("ipAddress")}


def refresh(ctx: Context, pip: Resource) -> None:
    """Hold or release the address as the allocation method and the association demand."""
    wants = pip.properties.get("publicIPAllocationMethod") == "Static" or _attached_to_vm(ctx, pip)
    has = pip.properties.get("ipAddress")
    if wants and not has:
        pip.properties["ipAddress"] = addresses.allocate_public(ctx, pip.id, _in_use_addresses(ctx))
        save(ctx, pip)
    elif has and not wants:
        addresses.release_public(ctx, has, pip.id)
        pip.properties.pop("ipAddress", None)
        save(ctx, pip)


def _attached_to_vm(ctx: Context, pip: Resource) -> bool:
    config = (pip.properties.get("ipConfiguration") or {}).get("id")
    if not config:
        return False
    nic = ctx.store.get(config.split("/ipConfigurations/", 1)[0])
    return nic is not None and bool(nic.properties.get("virtualMachine"))


def in_use_by_other(pip: Resource, config_id: str) -> str | None:
    """The ip configuration other than ``config_id`` holding this public IP, if any."""
    current = (pip.properties.get("ipConfiguration") or {}).get("id")
    return current if current and not same_id(current, config_id) else None


def associate(ctx: Context, pip_id: str | None, config_id: str, *, add: bool) -> None:
    """Set or clear the public IP's ``ipConfiguration`` back-reference."""
    if not pip_id:
        return
    pip = ctx.store.get(pip_id)
    if pip is None:
        return
    current = (pip.properties.get("ipConfiguration") or {}).get("id")
    if add:
        pip.properties["ipConfiguration"] = {"id": config_id}
    elif same_id(current, config_id):
        pip.properties.pop("ipConfiguration", None)
    else:
        return
    save(ctx, pip)
    refresh(ctx, pip)


def refresh_by_id(ctx: Context, pip_id: str | None) -> None:
    pip = ctx.store.get(pip_id) if pip_id else None
    if pip is not None:
        refresh(ctx, pip)


@lifecycle.on_remove(PIP)
def _public_ip_removed(ctx: Context, pip: Resource) -> None:
    """Free the address; a NIC still pointing here (group cascade) forgets the public IP."""
    addresses.release_public(ctx, pip.properties.get("ipAddress"), pip.id)
    config = (pip.properties.get("ipConfiguration") or {}).get("id")
    nic = ctx.store.get(config.split("/ipConfigurations/", 1)[0]) if config else None
    if nic is None:
        return
    for item in nic.properties.get("ipConfigurations") or []:
        if same_id(((item.get("properties") or {}).get("publicIPAddress") or {}).get("id"), pip.id):
            item["properties"].pop("publicIPAddress", None)
    save(ctx, nic)
