"""Network security groups and their security rules: validation as the network RP does it, the six
default rules every NSG carries, and the back-references to the subnets and NICs that use an NSG."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from emulator.core import lifecycle
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.responses import tags_of
from emulator.core.store import Resource
from emulator.services.network.common import (
    DEFAULT_RULE,
    NSG,
    RULE,
    begin,
    child_not_found,
    duplicate_name,
    get_top,
    location_for_update,
    new_etag,
    new_guid,
    properties_of,
    require_group,
    same_id,
    save,
    set_tags,
    sync_parent,
    top_id,
    validate_name,
)

PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")
ACCESSES = ("Allow", "Deny")
DIRECTIONS = ("Inbound", "Outbound")
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")  # service tags: VirtualNetwork, Internet, Storage.WestEurope ...

# name, description, source, destination, access, priority, direction (as Azure returns them)
_DEFAULTS = (
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer", "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow", 65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)


def default_rules(nsg_id: str, etag: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "name": name,
            "etag": etag,
            "type": DEFAULT_RULE,
            "properties": {
                "provisioningState": "Succeeded",
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }
        for name, description, source, destination, access, priority, direction in _DEFAULTS
    ]


# rule validation ---------------------------------------------------------------------------
def _enum(value: Any, allowed: tuple[str, ...], code: str, label: str) -> str:
    if isinstance(value, str):
        for option in allowed:
            if option.lower() == value.lower():
                return option
    raise ArmError(
        f"Security rule has invalid {label}. Value provided: {value}. Allowed values: {', '.join(allowed)}.", code=code
    )


def _port(value: Any) -> str:
    text = str(value).strip()
    if text == "*":
        return text
    low, sep, high = text.partition("-")
    try:
        a, b = int(low), int(high) if sep else int(low)
        if not (0 <= a <= 65535 and 0 <= b <= 65535 and a <= b):
            raise ValueError(text)
    except ValueError as exc:
        raise ArmError(
            f"Security rule has invalid Port range. Value provided: {value}. Value should be an integer OR integer "
            "range with '-' delimiter. Valid range 0-65535.",
            code="SecurityRuleInvalidPortRange",
        ) from exc
    return text


def _address(value: Any) -> str:
    text = str(value).strip()
    if text == "*" or _TAG.match(text):
        return text
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ArmError(
            f"Security rule has invalid Address prefix. Value provided: {value}", code="SecurityRuleInvalidAddressPrefix"
        ) from exc
    return text


def _pair(props: dict[str, Any], single: str, plural: str, rule_id: str, check: Any, label: str) -> dict[str, Any]:
    """``sourcePortRange`` / ``sourcePortRanges`` style pairs: one of them, as Azure echoes them."""
    one = props.get(single)
    many = props.get(plural) or []
    if one not in (None, ""):
        return {single: check(one), plural: []}
    if isinstance(many, list) and many:
        return {plural: [check(v) for v in many]}
    raise ArmError(
        f"Security rule parameter {label} for rule with Id {rule_id} cannot be empty.",
        code="SecurityRuleParameterIsNullOrEmpty",
    )


def normalize_rule(rule_id: str, props: dict[str, Any]) -> dict[str, Any]:
    """The stored properties of a security rule, or the network RP's 400 for the first bad field."""
    priority = props.get("priority")
    valid = isinstance(priority, (int, float)) and not isinstance(priority, bool) and float(priority).is_integer()
    if not valid or not 100 <= int(priority) <= 4096:  # type: ignore[arg-type]
        shown = 0 if priority is None else priority
        raise ArmError(
            f"Security rule has invalid Priority. Value provided: {shown} Allowed range 100-4096.",
            code="SecurityRuleInvalidPriority",
        )
    out: dict[str, Any] = {
        "protocol": _enum(props.get("protocol"), PROTOCOLS, "SecurityRuleInvalidProtocol", "Protocol"),
    }
    out.update(_pair(props, "sourcePortRange", "sourcePortRanges", rule_id, _port, "SourcePortRange"))
    out.update(_pair(props, "destinationPortRange", "destinationPortRanges", rule_id, _port, "DestinationPortRange"))
    out.update(_pair(props, "sourceAddressPrefix", "sourceAddressPrefixes", rule_id, _address, "SourceAddressPrefix"))
    out.update(_pair(props, "destinationAddressPrefix", "destinationAddressPrefixes", rule_id, _address,
                     "DestinationAddressPrefix"))
    for plural in ("sourcePortRanges", "destinationPortRanges", "sourceAddressPrefixes", "destinationAddressPrefixes"):
        out.setdefault(plural, [])
    out["access"] = _enum(props.get("access"), ACCESSES, "SecurityRuleInvalidAccess", "Access")
    out["priority"] = int(priority)  # type: ignore[arg-type]
    out["direction"] = _enum(props.get("direction"), DIRECTIONS, "SecurityRuleInvalidDirection", "Direction")
    if props.get("description"):
        out["description"] = str(props["description"])
    return out


def _check_conflicts(rules: list[tuple[str, dict[str, Any]]]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for name, props in rules:
        key = (props["priority"], props["direction"])
        if key in seen:
            raise ArmError(
                f"Security rule {name} conflicts with rule {seen[key]}. Rules cannot have the same Priority and "
                "Direction.",
                code="SecurityRuleConflict",
            )
        seen[key] = name


def _rule_body(rule_id: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule_id, "name": name, "type": RULE, "properties": {"provisioningState": "Updating", **props}}


def _write_rule(ctx: Context, rule_id: str, name: str, props: dict[str, Any]) -> Resource:
    existing = ctx.store.get(rule_id)
    rule = Resource(id=rule_id, type=RULE, body=_rule_body(rule_id, name, props),
                    internal=existing.internal if existing else {})
    begin(rule)
    save(ctx, rule)
    return rule


# NSGs ---------------------------------------------------------------------------------------
def put_nsg(ctx: Context, group: str, name: str, body: dict[str, Any]) -> tuple[Resource, bool]:
    """Create or replace an NSG; its ``securityRules`` list is the complete new set of rules."""
    validate_name(name)
    group = require_group(ctx, group)
    nsg_id = top_id(ctx, group, NSG, name)
    existing = ctx.store.get(nsg_id)
    location = location_for_update(existing, body, name, group)
    tags = tags_of(body)
    props = properties_of(body)
    wanted: list[tuple[str, dict[str, Any]]] = []
    names: set[str] = set()
    for index, item in enumerate(props.get("securityRules") or []):
        rule_name = str((item or {}).get("name") or "")
        if not rule_name:
            raise ArmError(f"Security rule at index {index} of {nsg_id} must have a name.", code="InvalidRequestFormat")
        validate_name(rule_name)
        if rule_name.lower() in names:
            raise duplicate_name(nsg_id, rule_name)
        names.add(rule_name.lower())
        wanted.append((rule_name, normalize_rule(f"{nsg_id}/securityRules/{rule_name}", properties_of(item))))
    _check_conflicts(wanted)

    nsg = existing or Resource(id=nsg_id, type=NSG, body={}, internal={})
    old = nsg.properties
    nsg.body = {"id": nsg_id, "name": name, "type": NSG, "location": location}
    set_tags(nsg.body, tags)
    new_props: dict[str, Any] = {
        "resourceGuid": old.get("resourceGuid") or new_guid(),
        "securityRules": [],
        "defaultSecurityRules": old.get("defaultSecurityRules") or default_rules(nsg_id, new_etag()),
    }
    for key in ("networkInterfaces", "subnets"):
        if old.get(key):
            new_props[key] = old[key]
    nsg.body["properties"] = new_props
    begin(nsg)
    save(ctx, nsg)
    for rule in ctx.store.children(nsg_id, RULE):
        if rule.name.lower() not in names:
            lifecycle.remove(ctx, rule)
    for rule_name, rule_props in wanted:
        _write_rule(ctx, f"{nsg_id}/securityRules/{rule_name}", rule_name, rule_props)
    return _reload(ctx, nsg_id), existing is None


def _reload(ctx: Context, resource_id: str) -> Resource:
    found = ctx.store.get(resource_id)
    assert found is not None
    return found


def begin_delete_nsg(ctx: Context, group: str, name: str) -> Resource | None:
    group = require_group(ctx, group)
    nsg = ctx.store.get(top_id(ctx, group, NSG, name))
    if nsg is None:
        return None
    ensure_unused(nsg)
    begin(nsg, "Deleting")
    save(ctx, nsg)
    return nsg


def ensure_unused(nsg: Resource) -> None:
    users = [r["id"] for key in ("networkInterfaces", "subnets") for r in nsg.properties.get(key) or []]
    if users:
        raise ArmError(
            f"Network security group {nsg.id} cannot be deleted because it is in use by the following resources: "
            f"{', '.join(users)}. In order to delete the Network security group, remove the association with the "
            "resource(s). To learn how to do this, see aka.ms/deletensg.",
            code="InUseNetworkSecurityGroupCannotBeDeleted",
        )


def associate(ctx: Context, nsg_id: str | None, key: str, member_id: str, *, add: bool) -> None:
    """Add or drop ``member_id`` in the NSG's ``subnets`` / ``networkInterfaces`` back-references."""
    if not nsg_id:
        return
    nsg = ctx.store.get(nsg_id)
    if nsg is None:
        return
    members = [m for m in nsg.properties.get(key) or [] if not same_id(m.get("id"), member_id)]
    if add:
        members.append({"id": member_id})
    if members:
        nsg.properties[key] = members
    else:
        nsg.properties.pop(key, None)
    save(ctx, nsg)


# security rules as child resources ----------------------------------------------------------
def get_rule(ctx: Context, group: str, nsg_name: str, name: str) -> Resource:
    nsg = get_top(ctx, group, NSG, nsg_name)
    rule = ctx.store.get(f"{nsg.id}/securityRules/{name}")
    if rule is None:
        raise child_not_found(f"{nsg.id}/securityRules/{name}")
    return rule


def list_rules(ctx: Context, group: str, nsg_name: str) -> list[Resource]:
    nsg = get_top(ctx, group, NSG, nsg_name)
    return ctx.store.children(nsg.id, RULE)


def put_rule(ctx: Context, group: str, nsg_name: str, name: str, body: dict[str, Any]) -> tuple[Resource, bool, str]:
    """Create or replace one rule of an NSG; returns (rule, created, the NSG's region)."""
    validate_name(name)
    nsg = get_top(ctx, group, NSG, nsg_name)
    rule_id = f"{nsg.id}/securityRules/{name}"
    props = normalize_rule(rule_id, properties_of(body))
    siblings = [(r.name, r.properties) for r in ctx.store.children(nsg.id, RULE) if not same_id(r.id, rule_id)]
    _check_conflicts([*siblings, (name, props)])
    created = ctx.store.get(rule_id) is None
    rule = _write_rule(ctx, rule_id, name, props)
    return rule, created, str(nsg.body["location"])


def begin_delete_rule(ctx: Context, group: str, nsg_name: str, name: str) -> tuple[Resource | None, str]:
    """Start deleting a rule; (None, "") when there is nothing to delete (its NSG may be gone too)."""
    nsg = ctx.store.get(top_id(ctx, require_group(ctx, group), NSG, nsg_name))
    if nsg is None:
        return None, ""
    rule = ctx.store.get(f"{nsg.id}/securityRules/{name}")
    if rule is not None:
        begin(rule, "Deleting")
        save(ctx, rule)
    return rule, str(nsg.body["location"])


def get_default_rule(ctx: Context, group: str, nsg_name: str, name: str) -> dict[str, Any]:
    nsg = get_top(ctx, group, NSG, nsg_name)
    for rule in nsg.properties.get("defaultSecurityRules") or []:
        if rule["name"].lower() == name.lower():
            return dict(rule)
    raise child_not_found(f"{nsg.id}/defaultSecurityRules/{name}")


# leaving -----------------------------------------------------------------------------------
@lifecycle.on_remove(NSG)
def _nsg_removed(ctx: Context, nsg: Resource) -> None:
    """Rules go with their NSG; subnets and NICs that still point at it (group cascade) forget it."""
    for rule in ctx.store.children(nsg.id, RULE):
        ctx.store.delete(rule.id)
    for key in ("subnets", "networkInterfaces"):
        for member in nsg.properties.get(key) or []:
            holder = ctx.store.get(member["id"])
            if holder is not None and same_id((holder.properties.get("networkSecurityGroup") or {}).get("id"), nsg.id):
                holder.properties.pop("networkSecurityGroup", None)
                save(ctx, holder)


@lifecycle.on_remove(RULE)
def _rule_removed(ctx: Context, rule: Resource) -> None:
    sync_parent(ctx, rule.id, without=rule.id)
