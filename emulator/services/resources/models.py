"""Resource groups and subscriptions: state rules, no HTTP."""

from __future__ import annotations

import re
from typing import Any

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.errors import ArmError, group_not_found
from emulator.core.ids import group_id
from emulator.core.lifecycle import remove
from emulator.core.locks import enforce
from emulator.core.regions import canonical
from emulator.core.store import Resource

RG_TYPE = "Microsoft.Resources/resourceGroups"
_RG_NAME = re.compile(r"^[-\w._()]{1,90}$", re.UNICODE)


def validate_group_name(name: str) -> None:
    if not _RG_NAME.match(name) or name.endswith("."):
        raise ArmError(
            f"Resource group name '{name}' is invalid. It can be up to 90 characters long, may contain "
            "alphanumerics, underscores, parentheses, hyphens and periods, and cannot end in a period.",
            code="InvalidResourceGroupName",
            target="resourceGroupName",
        )


def get_group(ctx: Context, name: str) -> Resource:
    found = ctx.store.get(str(group_id(ctx.subscription, name)))
    if found is None:
        raise group_not_found(name)
    return found


def put_group(ctx: Context, name: str, body: dict[str, Any], tags: dict[str, str]) -> tuple[Resource, bool]:
    validate_group_name(name)
    existing = ctx.store.get(str(group_id(ctx.subscription, name)))
    location = canonical(body.get("location"))
    if existing is not None:
        if existing.body["location"] != location:
            raise ArmError(
                f"Invalid resource group location '{location}'. The Resource group already exists in location "
                f"'{existing.body['location']}'.",
                code="InvalidResourceGroupLocation",
                status=409,
            )
        existing.body["tags"] = tags
        if "managedBy" in body:
            existing.body["managedBy"] = body["managedBy"]
        ctx.store.put(existing)
        return existing, False
    rid = str(group_id(ctx.subscription, name))
    resource = Resource(
        id=rid,
        type=RG_TYPE,
        body={
            "id": rid,
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "tags": tags,
            "properties": {"provisioningState": "Succeeded"},
        },
    )
    if body.get("managedBy"):
        resource.body["managedBy"] = body["managedBy"]
    ctx.store.put(resource)
    return resource, True


def patch_group(ctx: Context, name: str, tags: dict[str, str] | None) -> Resource:
    group = get_group(ctx, name)
    if tags is not None:
        group.body["tags"] = tags
        ctx.store.put(group)
    return group


def list_groups(ctx: Context) -> list[Resource]:
    return ctx.store.children(f"/subscriptions/{ctx.subscription}", RG_TYPE)


def begin_delete_group(ctx: Context, name: str, fail_with: dict[str, str] | None) -> str:
    """Start deleting a group and all it holds; refused while anything in it is locked."""
    group = get_group(ctx, name)
    enforce(ctx, group.id, "delete")
    group.properties["provisioningState"] = "Deleting"
    ctx.store.put(group)
    return lro.start(
        ctx, provider="resources", location=group.body["location"], handler="resources.delete_group",
        args={"id": group.id}, delay=ctx.duration(20.0), fail_with=fail_with,
    )


def _delete_group(ctx: Context, args: dict[str, Any]) -> None:
    group = ctx.store.get(args["id"])
    if group is None:
        return
    # children before parents: the deepest ids first
    for resource in sorted(ctx.store.in_group(group.name), key=lambda r: r.id.count("/"), reverse=True):
        remove(ctx, resource)
    remove(ctx, group)


def _delete_group_failed(ctx: Context, args: dict[str, Any]) -> None:
    group = ctx.store.get(args["id"])
    if group is not None:
        group.properties["provisioningState"] = "Succeeded"
        ctx.store.put(group)


lro.on_complete("resources.delete_group", _delete_group_failed)(_delete_group)


def group_resources(ctx: Context, name: str) -> list[Resource]:
    """Top-level resources of a group (what ``resources.list_by_resource_group`` shows)."""
    get_group(ctx, name)
    return [r for r in ctx.store.in_group(name) if r.id.lower().count("/providers/") == 1 and r.id.count("/") == 8]


def subscription_resources(ctx: Context) -> list[Resource]:
    return [
        r for r in ctx.store.all()
        if r.id.lower().count("/providers/") == 1 and r.id.count("/") == 8 and "/resourcegroups/" in r.id.lower()
    ]


def matches_filter(resource: Resource, flt: str | None) -> bool:
    """ARM's ``$filter``: ``tagName eq 'k' [and tagValue eq 'v']``, ``resourceType eq 't'``, ``name eq 'n'``."""
    if not flt:
        return True
    terms = dict((k.lower(), v) for k, v in re.findall(r"(\w+)\s+eq\s+'([^']*)'", flt))
    tags = {k.lower(): v for k, v in (resource.body.get("tags") or {}).items()}
    if "tagname" in terms:
        if terms["tagname"].lower() not in tags:
            return False
        if "tagvalue" in terms and tags[terms["tagname"].lower()] != terms["tagvalue"]:
            return False
    if "resourcetype" in terms and resource.body.get("type", "").lower() != terms["resourcetype"].lower():
        return False
    return not ("name" in terms and resource.name.lower() != terms["name"].lower())
