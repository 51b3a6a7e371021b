"""What galleries, image definitions and image versions share: types, parents, locations, LRO bookkeeping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.errors import ArmError, InvalidParameter, group_not_found, parent_not_found, resource_not_found
from emulator.core.ids import ResourceId, group_id, resource_id
from emulator.core.lifecycle import remove
from emulator.core.regions import REGIONS
from emulator.core.store import Resource

NS = "Microsoft.Compute"
GALLERY = "Microsoft.Compute/galleries"
DEFINITION = "Microsoft.Compute/galleries/images"
VERSION = "Microsoft.Compute/galleries/images/versions"
PROVIDER = "gallery"  # operation status served at .../locations/{loc}/capsOperations/{id}


def group_name(ctx: Context, group: str) -> str:
    """The group's stored name (canonical casing for ids); ResourceGroupNotFound if there is none."""
    found = ctx.store.get(str(group_id(ctx.subscription, group)))
    if found is None:
        raise group_not_found(group)
    return str(found.body.get("name", group))


def rid(ctx: Context, group: str, *names: str) -> ResourceId:
    """Id of a gallery (1 name), definition (2) or version (3) in ``group``."""
    pairs: list[str] = []
    for kind, name in zip(("galleries", "images", "versions"), names, strict=False):
        pairs += [kind, name]
    return resource_id(ctx.subscription, group, NS, *pairs)


def get(ctx: Context, group: str, *names: str) -> Resource:
    """A gallery resource, or ARM's 404: missing group, missing parent, missing resource."""
    group = group_name(ctx, group)
    if len(names) > 1:
        require_parent(ctx, group, *names[:-1])
    found = ctx.store.get(str(rid(ctx, group, *names)))
    if found is None:
        nested = "/".join(f"{k}/{n}" for k, n in zip(("images", "versions"), names[1:], strict=False))
        raise resource_not_found(GALLERY, "/".join([names[0], nested]) if nested else names[0], group)
    return found


def require_parent(ctx: Context, group: str, *names: str) -> Resource:
    found = ctx.store.get(str(rid(ctx, group, *names)))
    if found is None:
        raise parent_not_found("/".join(names))
    return found


def location_of(value: Any, target: str = "location") -> str:
    """Canonical region name; ARM's 400 naming the gallery resource type for unknown ones."""
    if not value or not isinstance(value, str):
        raise InvalidParameter(f"Required parameter '{target}' is missing (null).", target=target)
    key = value.replace(" ", "").lower()
    if key not in REGIONS:
        raise ArmError(
            f"The provided location '{value}' is not available for resource type '{GALLERY}'. "
            f"List of available regions for the resource type is '{','.join(REGIONS)}'.",
            code="LocationNotAvailableForResourceType",
            target=target,
        )
    return key


def same_location(existing: Resource, location: str, group: str, relative_name: str) -> None:
    if existing.body["location"] != location:
        raise ArmError(
            f"The resource '{relative_name}' already exists in location '{existing.body['location']}' in resource "
            f"group '{group}'. A resource with the same name cannot be created in location '{location}'. "
            "Please select a new resource name.",
            code="InvalidResourceLocation",
            status=409,
        )


def relative(resource_id: str) -> str:
    """``Microsoft.Compute/galleries/g/images/i``: how ARM names nested resources in messages."""
    return resource_id.split("/providers/", 1)[1]


def refuse_if_nested(ctx: Context, resource: Resource, child_type: str) -> None:
    children = ctx.store.children(resource.id, child_type)
    if children:
        ids = ",".join(f"'{relative(c.id)}'" for c in children[:5])
        raise ArmError(
            f"Cannot delete resource while nested resources exist. Some existing nested resource IDs include: {ids}. "
            "Please delete all nested resources before deleting this resource.",
            code="CannotDeleteResource",
            status=409,
        )


def refuse_if_deleting(resource: Resource) -> None:
    """Nothing may be written to (or created under) a resource that is being deleted."""
    if resource.properties.get("provisioningState") == "Deleting":
        raise ArmError(
            f"The resource '{relative(resource.id)}' is being deleted; it cannot be changed and nothing can be "
            "created under it.",
            code="OperationNotAllowed", status=409,
        )


def descendants(ctx: Context, resource: Resource) -> list[Resource]:
    """Everything nested under ``resource``, parents before children."""
    out: list[Resource] = []
    for child in ctx.store.children(resource.id):
        out.append(child)
        out.extend(descendants(ctx, child))
    return out


def property_change(path: str) -> ArmError:
    return ArmError(f"Changing property '{path}' is not allowed.", code="PropertyChangeNotAllowed", status=409,
                    target=path)


def now_iso(ctx: Context) -> str:
    return datetime.fromtimestamp(ctx.now(), tz=UTC).isoformat(timespec="seconds")


def end_of_life(ctx: Context, value: Any, previous: str | None, target: str) -> str | None:
    """Normalised endOfLifeDate; a new or changed date must lie in the future."""
    if value is None:
        return None
    try:
        text = str(value).strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ArmError(
            f"Could not convert string to DateTimeOffset: {value}. Path '{target}'.", code="InvalidRequestContent",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    out = parsed.astimezone(UTC).isoformat(timespec="seconds")
    if out != previous and parsed.timestamp() <= ctx.now():
        raise InvalidParameter("EndOfLifeDate must be set to a future date.", target=target)
    return out


# provisioning: every write is an operation that moves provisioningState to Succeeded (or Failed) -----------
def begin(ctx: Context, resource: Resource, state: str, *, delay: float, fail_with: dict[str, str] | None) -> str:
    """Set a transitional provisioningState and start the operation that ends it."""
    token = uuid.uuid4().hex
    resource.properties["provisioningState"] = state
    resource.internal["op"] = token
    ctx.store.put(resource)
    return lro.start(ctx, provider=PROVIDER, location=resource.body["location"], handler="gallery.provisioned",
                     args={"id": resource.id, "token": token}, delay=delay, fail_with=fail_with)


def _provisioned(ctx: Context, args: dict[str, Any]) -> None:
    found = ctx.store.get(args["id"])
    if found is not None and found.internal.get("op") == args["token"]:
        found.properties["provisioningState"] = "Succeeded"
        ctx.store.put(found)


def _provisioning_failed(ctx: Context, args: dict[str, Any]) -> None:
    found = ctx.store.get(args["id"])
    if found is not None and found.internal.get("op") == args["token"]:
        found.properties["provisioningState"] = "Failed"
        ctx.store.put(found)


lro.on_complete("gallery.provisioned", _provisioning_failed)(_provisioned)


def begin_delete(ctx: Context, resource: Resource, *, delay: float, fail_with: dict[str, str] | None) -> str:
    token = uuid.uuid4().hex
    previous = resource.properties.get("provisioningState", "Succeeded")
    resource.properties["provisioningState"] = "Deleting"
    resource.internal["op"] = token
    ctx.store.put(resource)
    return lro.start(ctx, provider=PROVIDER, location=resource.body["location"], handler="gallery.deleted",
                     args={"id": resource.id, "token": token, "previous": previous}, delay=delay, fail_with=fail_with)


def _deleted(ctx: Context, args: dict[str, Any]) -> None:
    found = ctx.store.get(args["id"])
    if found is None:
        return
    for resource in reversed(descendants(ctx, found)):  # children before parents
        remove(ctx, resource)
    remove(ctx, found)


def _delete_failed(ctx: Context, args: dict[str, Any]) -> None:
    found = ctx.store.get(args["id"])
    if found is not None and found.internal.get("op") == args["token"]:
        found.properties["provisioningState"] = args.get("previous") or "Succeeded"
        ctx.store.put(found)


lro.on_complete("gallery.deleted", _delete_failed)(_deleted)
