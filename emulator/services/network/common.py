"""What every Microsoft.Network resource shares: types, names, etags, lookups, references, states.

The network RP keeps some children both as resources of their own and inline in their parent
(a vnet's ``subnets``, an NSG's ``securityRules``). Here the child resource is the truth and
``save`` rewrites the parent's inline list whenever a child changes, so both views always agree.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError, InvalidResourceName, NotFound, group_not_found, resource_not_found
from emulator.core.ids import group_id, parse, resource_id
from emulator.core.regions import canonical
from emulator.core.store import Resource

NS = "Microsoft.Network"
VNET = f"{NS}/virtualNetworks"
SUBNET = f"{VNET}/subnets"
NSG = f"{NS}/networkSecurityGroups"
RULE = f"{NSG}/securityRules"
DEFAULT_RULE = f"{NSG}/defaultSecurityRules"
PIP = f"{NS}/publicIPAddresses"
NIC = f"{NS}/networkInterfaces"
IPCONFIG = f"{NIC}/ipConfigurations"

# Children that also appear inline in their parent's properties, and under which key.
INLINE = {SUBNET.lower(): "subnets", RULE.lower(): "securityRules"}
CHILD_OF = {VNET.lower(): SUBNET, NSG.lower(): RULE}

# Roughly how long Azure takes to settle each PUT / DELETE (seconds, before the time factor).
PUT_SECONDS = {VNET: 4.0, SUBNET: 4.0, NSG: 3.0, RULE: 3.0, PIP: 3.0, NIC: 2.0}
DELETE_SECONDS = {VNET: 10.0, SUBNET: 8.0, NSG: 10.0, RULE: 5.0, PIP: 10.0, NIC: 5.0}

# The names ARM uses for these in "...the last operation ... is PutSubnetOperation".
_OPERATION_NOUN = {
    VNET.lower(): "VirtualNetwork", SUBNET.lower(): "Subnet", NSG.lower(): "NetworkSecurityGroup",
    RULE.lower(): "SecurityRule", PIP.lower(): "PublicIpAddress", NIC.lower(): "NetworkInterface",
}

_NAME = re.compile(r"^\w(?:[\w.-]*\w)?$")


def is_type(resource: Resource, rtype: str) -> bool:
    """The store keeps types lower-cased; compare the way ARM does."""
    return resource.type.lower() == rtype.lower()


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def new_guid() -> str:
    return str(uuid.uuid4())


def validate_name(name: str, *, min_len: int = 1, max_len: int = 80) -> None:
    """The network RP's rule: word characters, '.', '-', '_'; starts with a word char, ends with one or '_'."""
    if min_len <= len(name) <= max_len and _NAME.match(name):
        return
    raise InvalidResourceName(
        f"Resource name {name} is invalid. The name can be up to {max_len} characters long. It must begin with a "
        "word character, and it must end with a word character or with '_'. The name may contain word characters "
        "or '.', '-', '_'."
    )


def properties_of(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise ArmError("The value of parameter 'properties' is invalid.", code="InvalidRequestFormat", target="properties")
    return props


def require_group(ctx: Context, group: str) -> str:
    """The group's canonical name (ids carry it), or ARM's 404 ResourceGroupNotFound."""
    found = ctx.store.get(str(group_id(ctx.subscription, group)))
    if found is None:
        raise group_not_found(group)
    return found.name


def top_id(ctx: Context, group: str, rtype: str, name: str) -> str:
    return str(resource_id(ctx.subscription, group, NS, rtype.split("/", 1)[1], name))


def get_top(ctx: Context, group: str, rtype: str, name: str) -> Resource:
    """A top-level network resource, or ARM's 404 (ResourceGroupNotFound first, as ARM checks the group)."""
    canonical_group = require_group(ctx, group)
    found = ctx.store.get(top_id(ctx, canonical_group, rtype, name))
    if found is None:
        raise resource_not_found(rtype, name, group)
    return found


def child_not_found(child_id: str) -> NotFound:
    """The network RP's own 404 for nested resources (subnets, rules, ip configurations)."""
    return NotFound(f"Resource {child_id} not found.", code="NotFound")


def list_top(ctx: Context, rtype: str, group: str | None) -> list[Resource]:
    if group is None:
        return ctx.store.of_type(rtype, f"/subscriptions/{ctx.subscription}")
    canonical_group = require_group(ctx, group)
    return ctx.store.of_type(rtype, str(group_id(ctx.subscription, canonical_group)))


def location_for_update(existing: Resource | None, body: dict[str, Any], name: str, group: str) -> str:
    location = canonical(body.get("location"))
    if existing is not None and existing.body.get("location") != location:
        raise ArmError(
            f"The resource '{name}' already exists in location '{existing.body.get('location')}' in resource group "
            f"'{group}'. A resource with the same name cannot be created in location '{location}'. Please select a "
            "new resource name.",
            code="InvalidResourceLocation",
            status=409,
        )
    return location


def set_tags(body: dict[str, Any], tags: dict[str, str]) -> None:
    """Azure's network RP omits ``tags`` entirely when there are none."""
    if tags:
        body["tags"] = tags
    else:
        body.pop("tags", None)


# references --------------------------------------------------------------------------------
def ref_of(value: Any, path: str) -> str | None:
    """The id inside a ``{"id": ...}`` reference at ``path``, checked for ARM's id shape; None if absent."""
    if value is None:
        return None
    ref = value.get("id") if isinstance(value, dict) else None
    if not ref or not isinstance(ref, str):
        raise ArmError(
            "Cannot parse the request.",
            code="InvalidRequestFormat",
            details=[{"code": "MissingJsonReferenceId", "message": f"Value for reference id is missing. Path {path}."}],
        )
    try:
        parse(ref)
    except ValueError as exc:
        raise ArmError(
            f"Property id '{ref}' at path '{path}.id' is invalid. Expect fully qualified resource Id that start with "
            "'/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
            code="LinkedInvalidPropertyId",
        ) from exc
    return ref


def invalid_reference(ref: str, referrer: str | None) -> ArmError:
    by = f" referenced by resource {referrer}" if referrer else ""
    return ArmError(
        f"Resource {ref}{by} was not found. Please make sure that the referenced resource exists, and that both "
        "resources are in the same region.",
        code="InvalidResourceReference",
        details=[{"code": "NotFound", "message": f"Resource {ref} not found."}],
    )


def region_of(ctx: Context, resource: Resource) -> str | None:
    """A resource's region; a subnet or rule lives in its parent's."""
    if "location" in resource.body:
        return str(resource.body["location"])
    parent = ctx.store.get(resource.id.rsplit("/", 2)[0])
    return None if parent is None else region_of(ctx, parent)


def resolve(ctx: Context, ref: str, rtype: str, referrer: str, location: str) -> Resource:
    """The resource a reference names: it must exist, have the expected type, sit in the same region
    and be provisioned (not mid-update or being deleted)."""
    found = ctx.store.get(ref)
    if found is None or not is_type(found, rtype) or region_of(ctx, found) != location:
        raise invalid_reference(ref, referrer)
    state = found.properties.get("provisioningState")
    if state in ("Updating", "Deleting"):
        verb = "Delete" if state == "Deleting" else "Put"
        raise ArmError(
            f"Cannot proceed with operation because resource {found.id} used by resource {referrer} is not in "
            f"Succeeded state. Resource is in {state} state and the last operation that updated/is updating the "
            f"resource is {verb}{_OPERATION_NOUN.get(found.type.lower(), 'Resource')}Operation.",
            code="ReferencedResourceNotProvisioned",
        )
    return found


def same_id(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


# state -------------------------------------------------------------------------------------
def begin(resource: Resource, state: str = "Updating") -> str:
    """Put a resource in a transient state for an operation; the token ties the operation to it."""
    token = uuid.uuid4().hex
    resource.internal["pending"] = token
    resource.properties["provisioningState"] = state
    return token


def save(ctx: Context, resource: Resource) -> None:
    """Store a changed resource with a new etag, and refresh its parent's inline copy if it has one."""
    resource.body["etag"] = new_etag()
    ctx.store.put(resource)
    if resource.type.lower() in INLINE:
        sync_parent(ctx, resource.id)


def sync_parent(ctx: Context, child_id: str, *, without: str | None = None) -> None:
    """Rewrite the parent's inline list of ``child_id``'s kind from the child resources."""
    parent_id = child_id.rsplit("/", 2)[0]
    parent = ctx.store.get(parent_id)
    if parent is None:
        return
    child_type = CHILD_OF.get(parent.type.lower())
    if child_type is None:
        return
    key = INLINE[child_type.lower()]
    parent.properties[key] = [c.body for c in ctx.store.children(parent.id, child_type) if not same_id(c.id, without)]
    parent.body["etag"] = new_etag()
    ctx.store.put(parent)


def mark(ctx: Context, resource: Resource, state: str) -> None:
    """Settle a resource (and the children its operation touched) in ``state``."""
    resource.properties["provisioningState"] = state
    resource.internal.pop("pending", None)
    for config in resource.properties.get("ipConfigurations") or []:
        config.setdefault("properties", {})["provisioningState"] = state
    save(ctx, resource)
    child_type = CHILD_OF.get(resource.type.lower())
    if child_type is None:
        return
    for child in ctx.store.children(resource.id, child_type):
        if child.properties.get("provisioningState") == "Updating":
            child.properties["provisioningState"] = state
            child.internal.pop("pending", None)
            save(ctx, child)


def duplicate_name(parent_id: str, name: str) -> ArmError:
    return ArmError(
        f"Resource {parent_id} has two child resources with the same name ({name}).", code="DuplicateResourceName"
    )
