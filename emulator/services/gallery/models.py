"""Galleries and image definitions: state rules, no HTTP. Versions live in versions.py.

Also the entry point the compute service uses to boot VMs from gallery images: ``image_source``.
"""

from __future__ import annotations

from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError, InvalidParameter
from emulator.core.store import Resource
from emulator.services.gallery import common, names
from emulator.services.gallery.common import DEFINITION, GALLERY, VERSION
from emulator.services.gallery.versions import image_source

__all__ = ["image_source"]

# Azure's durations (seconds) for the control-plane work behind each call, scaled by ctx.duration.
CREATE_SECONDS = {GALLERY: 15.0, DEFINITION: 10.0}
UPDATE_SECONDS = 5.0
DELETE_SECONDS = {GALLERY: 15.0, DEFINITION: 10.0}

GALLERY_MUTABLE = ("description", "sharingProfile", "softDeletePolicy")
DEFINITION_MUTABLE = ("description", "eula", "privacyStatementUri", "releaseNoteUri", "recommended", "disallowed",
                      "purchasePlan", "features", "allowUpdateImage")
OS_TYPES = {"linux": "Linux", "windows": "Windows"}
OS_STATES = {"generalized": "Generalized", "specialized": "Specialized"}
HYPER_V = {"v1": "V1", "v2": "V2"}
ARCHITECTURES = {"x64": "x64", "arm64": "Arm64"}
# What a PATCH that leaves out a non-nullable enum means to the service: its first value, so omitting
# osType on a Linux definition reads as a change to Windows (Azure answers 409 PropertyChangeNotAllowed).
PATCH_ENUM_DEFAULTS = {"osType": "Windows", "osState": "Generalized"}


# galleries ---------------------------------------------------------------------------------------
def put_gallery(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str],
                fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    names.check_gallery(name)
    group = common.group_name(ctx, group)
    location = common.location_of(body.get("location"))
    props = body.get("properties") or {}
    rid = str(common.rid(ctx, group, name))
    existing = ctx.store.get(rid)
    if existing is None:
        _unique_in_subscription(ctx, name)
        resource = Resource(id=rid, type=GALLERY, body={
            "id": rid, "name": name, "type": GALLERY, "location": location, "tags": tags,
            "properties": {"identifier": {"uniqueName": f"{ctx.subscription}-{name.upper()}"}},
        })
    else:
        common.refuse_if_deleting(existing)
        common.same_location(existing, location, group, name)
        resource = existing
        resource.body["tags"] = tags
    _apply(resource.properties, props, GALLERY_MUTABLE, replace=True)
    created = existing is None
    op = common.begin(ctx, resource, "Creating" if created else "Updating",
                      delay=ctx.duration(CREATE_SECONDS[GALLERY] if created else UPDATE_SECONDS), fail_with=fail_with)
    return resource, created, op


def _unique_in_subscription(ctx: Context, name: str) -> None:
    for other in ctx.store.of_type(GALLERY, f"/subscriptions/{ctx.subscription}"):
        if other.name.lower() == name.lower():
            raise ArmError(
                f"The gallery name '{name}' is not unique within the subscription '{ctx.subscription}'. "
                "Please pick another gallery name.",
                code="Conflict", status=409, target="galleryName",
            )


def patch_gallery(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str] | None,
                  fail_with: dict[str, str] | None) -> tuple[Resource, str]:
    resource = common.get(ctx, group, name)
    common.refuse_if_deleting(resource)
    if tags is not None:
        resource.body["tags"] = tags
    _apply(resource.properties, body.get("properties") or {}, GALLERY_MUTABLE, replace=False)
    op = common.begin(ctx, resource, "Updating", delay=ctx.duration(UPDATE_SECONDS), fail_with=fail_with)
    return resource, op


def list_galleries(ctx: Context, group: str | None) -> list[Resource]:
    if group is None:
        return ctx.store.of_type(GALLERY, f"/subscriptions/{ctx.subscription}")
    group = common.group_name(ctx, group)
    return ctx.store.children(f"/subscriptions/{ctx.subscription}/resourceGroups/{group}", GALLERY)


def begin_delete_gallery(ctx: Context, group: str, name: str, fail_with: dict[str, str] | None) -> tuple[Resource, str] | None:
    group = common.group_name(ctx, group)
    resource = ctx.store.get(str(common.rid(ctx, group, name)))
    if resource is None:
        return None
    common.refuse_if_nested(ctx, resource, DEFINITION)
    return resource, common.begin_delete(ctx, resource, delay=ctx.duration(DELETE_SECONDS[GALLERY]), fail_with=fail_with)


# image definitions -------------------------------------------------------------------------------
def put_definition(ctx: Context, group: str, gallery: str, name: str, body: dict[str, Any], tags: dict[str, str],
                   fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    names.check_definition(name)
    group = common.group_name(ctx, group)
    parent = common.require_parent(ctx, group, gallery)
    common.refuse_if_deleting(parent)
    location = common.location_of(body.get("location"))
    props = body.get("properties") or {}
    fixed = _fixed_fields(props, defaults={})
    rid = str(common.rid(ctx, group, parent.name, name))
    existing = ctx.store.get(rid)
    if existing is not None:
        common.refuse_if_deleting(existing)
        common.same_location(existing, location, group, f"{parent.name}/{name}")
        _check_unchanged(existing.properties, fixed)
    _unique_identifier(ctx, parent, rid, fixed["identifier"])
    eol = common.end_of_life(ctx, props.get("endOfLifeDate"),
                             existing.properties.get("endOfLifeDate") if existing else None,
                             "galleryImage.properties.endOfLifeDate")
    _check_recommended(props.get("recommended"))
    if existing is None:
        resource = Resource(id=rid, type=DEFINITION, body={
            "id": rid, "name": name, "type": DEFINITION, "location": location, "tags": tags, "properties": {},
        })
    else:
        resource = existing
        resource.body["tags"] = tags
    resource.properties.update(fixed)
    _apply(resource.properties, props, DEFINITION_MUTABLE, replace=True)
    _set(resource.properties, "endOfLifeDate", eol)
    created = existing is None
    op = common.begin(ctx, resource, "Creating" if created else "Updating",
                      delay=ctx.duration(CREATE_SECONDS[DEFINITION] if created else UPDATE_SECONDS),
                      fail_with=fail_with)
    return resource, created, op


def patch_definition(ctx: Context, group: str, gallery: str, name: str, body: dict[str, Any],
                     tags: dict[str, str] | None, fail_with: dict[str, str] | None) -> tuple[Resource, str]:
    resource = common.get(ctx, group, gallery, name)
    common.refuse_if_deleting(resource)
    props = body.get("properties") or {}
    current = resource.properties
    merged = {k: current.get(k) for k in ("osType", "osState", "hyperVGeneration", "identifier", "architecture")}
    merged.update({k: PATCH_ENUM_DEFAULTS[k] for k in PATCH_ENUM_DEFAULTS})
    merged.update({k: v for k, v in props.items() if v is not None})
    fixed = _fixed_fields(merged, defaults={})
    _check_unchanged(current, fixed)
    if "recommended" in props:
        _check_recommended(props.get("recommended"))
    if "endOfLifeDate" in props:
        _set(current, "endOfLifeDate", common.end_of_life(ctx, props["endOfLifeDate"], current.get("endOfLifeDate"),
                                                         "galleryImage.properties.endOfLifeDate"))
    if tags is not None:
        resource.body["tags"] = tags
    _apply(current, props, DEFINITION_MUTABLE, replace=False)
    op = common.begin(ctx, resource, "Updating", delay=ctx.duration(UPDATE_SECONDS), fail_with=fail_with)
    return resource, op


def list_definitions(ctx: Context, group: str, gallery: str) -> list[Resource]:
    parent = common.get(ctx, group, gallery)
    return ctx.store.children(parent.id, DEFINITION)


def begin_delete_definition(ctx: Context, group: str, gallery: str, name: str,
                            fail_with: dict[str, str] | None) -> tuple[Resource, str] | None:
    group = common.group_name(ctx, group)
    common.require_parent(ctx, group, gallery)
    resource = ctx.store.get(str(common.rid(ctx, group, gallery, name)))
    if resource is None:
        return None
    common.refuse_if_nested(ctx, resource, VERSION)
    return resource, common.begin_delete(ctx, resource, delay=ctx.duration(DELETE_SECONDS[DEFINITION]),
                                         fail_with=fail_with)


def _enum(props: dict[str, Any], key: str, values: dict[str, str], default: str | None) -> str:
    value = props.get(key)
    target = f"galleryImage.properties.{key}"
    if value is None:
        if default is None:
            raise InvalidParameter(f"Required parameter '{target}' is missing (null).", target=target)
        return default
    if not isinstance(value, str) or value.lower() not in values:
        raise InvalidParameter(
            f"The value '{value}' of parameter '{target}' is invalid. Allowed values are: {', '.join(values.values())}.",
            target=target,
        )
    return values[value.lower()]


def _fixed_fields(props: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """The fields a definition can never change, validated and in canonical form."""
    ident = props.get("identifier")
    if not isinstance(ident, dict):
        raise InvalidParameter("Required parameter 'galleryImage.properties.identifier' is missing (null).",
                               target="galleryImage.properties.identifier")
    return {
        "osType": _enum(props, "osType", OS_TYPES, defaults.get("osType")),
        "osState": _enum(props, "osState", OS_STATES, defaults.get("osState")),
        "hyperVGeneration": _enum(props, "hyperVGeneration", HYPER_V, "V1"),
        "architecture": _enum(props, "architecture", ARCHITECTURES, "x64"),
        "identifier": {f: names.check_identifier_field(f, ident.get(f)) for f in ("publisher", "offer", "sku")},
    }


def _check_unchanged(current: dict[str, Any], fixed: dict[str, Any]) -> None:
    for key in ("osType", "osState", "hyperVGeneration", "architecture"):
        if str(current.get(key, "")).lower() != str(fixed[key]).lower():
            raise common.property_change(f"galleryImage.properties.{key}")
    for field in ("publisher", "offer", "sku"):
        if str(current["identifier"][field]).lower() != fixed["identifier"][field].lower():
            raise common.property_change(f"galleryImage.properties.identifier.{field}")


def _unique_identifier(ctx: Context, gallery: Resource, rid: str, ident: dict[str, str]) -> None:
    triple = tuple(ident[f].lower() for f in ("publisher", "offer", "sku"))
    for other in ctx.store.children(gallery.id, DEFINITION):
        theirs = other.properties["identifier"]
        if other.key != rid.lower() and tuple(theirs[f].lower() for f in ("publisher", "offer", "sku")) == triple:
            raise ArmError(
                f"Gallery image: {other.name} identified by (publisher:{ident['publisher']}, offer:{ident['offer']}, "
                f"sku:{ident['sku']}) already exists. Choose a different publisher, offer, sku combination.",
                code="Conflict", status=409,
            )


def _check_recommended(recommended: Any) -> None:
    if not isinstance(recommended, dict):
        return
    for key in ("vCPUs", "memory"):
        bounds = recommended.get(key) or {}
        low, high = bounds.get("min"), bounds.get("max")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            prop = f"galleryImage.properties.recommended.{key}"
            raise InvalidParameter(
                f"The minimum value of {prop} must not be greater than the maximum value of {prop}.", target=prop,
            )


def _apply(target: dict[str, Any], props: dict[str, Any], keys: tuple[str, ...], *, replace: bool) -> None:
    """Copy updatable fields; a PUT (``replace``) also drops the ones it leaves out."""
    for key in keys:
        if key in props and props[key] is not None:
            target[key] = props[key]
        elif replace:
            target.pop(key, None)


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
