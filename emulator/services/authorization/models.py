"""Microsoft.Authorization state and rules: management locks, role definitions, role assignments.

Locks and role assignments are extension resources: ``{scope}/providers/Microsoft.Authorization/
{locks|roleAssignments}/{name}`` on a subscription, a resource group or a resource. They live in
the store under that id, so a resource group's cascade delete takes them with it. What a lock
*does* is enforced for every call by emulator/core/locks.py; this module only keeps them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from emulator.core import ids
from emulator.core.context import Context
from emulator.core.errors import BadRequest, Conflict, NotFound, group_not_found, resource_not_found
from emulator.core.locks import LOCK_TYPE
from emulator.core.store import Resource
from emulator.services.authorization.builtin_roles import ROLES, BuiltinRole

ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
LOCK_LEVELS = ("CanNotDelete", "ReadOnly")
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
_LOCK_NAME_FORBIDDEN = set('<>%&:\\?/')
_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_ROLE_DEF_ID = re.compile(
    r"^(?:/subscriptions/(?P<sub>[^/]+))?/providers/Microsoft\.Authorization/roleDefinitions/(?P<id>[^/]+)/?$",
    re.IGNORECASE,
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


# scopes ----------------------------------------------------------------------------------
def resolve_scope(ctx: Context, scope: str) -> str:
    """The canonical id of an existing subscription, group or resource scope, else ARM's 404."""
    try:
        rid = ids.parse(scope)
    except ValueError as exc:
        raise BadRequest(f"The scope '{scope}' is not a valid resource id.", code="InvalidScope") from exc
    if rid.group is None:
        return f"/subscriptions/{ctx.subscription}"
    group = ctx.store.get(str(ids.group_id(ctx.subscription, rid.group)))
    if group is None:
        raise group_not_found(rid.group)
    if not rid.segments:
        return group.id
    found = ctx.store.get(str(rid))
    if found is None:
        full_type = "/".join([rid.namespace or "", *(f"{t}/{n}" for t, n in rid.segments[:-1]), rid.segments[-1][0]])
        raise resource_not_found(full_type, rid.name, group.name)
    return found.id


def _related(scope: str, other: str, *, below: bool) -> bool:
    """Is ``other`` at or above ``scope`` (inherited), or, when ``below``, beneath it?"""
    s, o = scope.lower().rstrip("/"), other.lower().rstrip("/")
    if s == o or s.startswith(o + "/"):
        return True
    return below and o.startswith(s + "/")


def _extension_scope(resource: Resource) -> str:
    return resource.id.rsplit("/providers/", 1)[0]


def _caller(claims: dict[str, Any]) -> str:
    return str(claims.get("oid") or claims.get("appid") or "unknown")


# locks -------------------------------------------------------------------------------------
def lock_id(scope: str, name: str) -> str:
    return f"{scope}/providers/Microsoft.Authorization/locks/{name}"


def _validate_lock(name: str, body: dict[str, Any]) -> dict[str, Any]:
    if not name or len(name) > 260 or any(c in _LOCK_NAME_FORBIDDEN or ord(c) < 32 for c in name):
        raise BadRequest(
            f"The lock name '{name}' is invalid. The lock name can be a maximum of 260 characters. It cannot "
            "contain <, > %, &, :, \\, ?, /, or any control characters.",
            code="InvalidLockName",
        )
    props = body.get("properties")
    if not isinstance(props, dict):
        raise BadRequest("The request content was invalid and could not be deserialized: 'properties' is required.",
                         code="InvalidRequestContent")
    level = props.get("level")
    if level not in LOCK_LEVELS:
        raise BadRequest(
            f"The lock level '{level}' is invalid. Supported lock levels are 'CanNotDelete' and 'ReadOnly'.",
            code="InvalidLockLevel", target="properties.level",
        )
    notes = props.get("notes")
    if notes is not None and (not isinstance(notes, str) or len(notes) > 512):
        raise BadRequest("The lock notes can be a maximum of 512 characters.", code="InvalidLockNotes",
                         target="properties.notes")
    owners = props.get("owners")
    if owners is not None and (
        not isinstance(owners, list) or not all(isinstance(o, dict) and isinstance(o.get("applicationId"), str)
                                                for o in owners)
    ):
        raise BadRequest("Each lock owner must be an object with an 'applicationId'.", code="InvalidLockOwners",
                         target="properties.owners")
    out: dict[str, Any] = {"level": level}
    if notes is not None:
        out["notes"] = notes
    if owners is not None:
        out["owners"] = [{"applicationId": o["applicationId"]} for o in owners]
    return out


def put_lock(ctx: Context, scope: str, name: str, body: dict[str, Any], claims: dict[str, Any]) -> tuple[Resource, bool]:
    """Create or replace a lock (synchronous: 201 new, 200 existing)."""
    canonical = resolve_scope(ctx, scope)
    props = _validate_lock(name, body)
    rid = lock_id(canonical, name)
    existing = ctx.store.get(rid)
    stamp, who = now_iso(), _caller(claims)
    system = dict(existing.body.get("systemData", {})) if existing else {
        "createdBy": who, "createdByType": "Application", "createdAt": stamp,
    }
    system.update({"lastModifiedBy": who, "lastModifiedByType": "Application", "lastModifiedAt": stamp})
    resource = Resource(
        id=existing.id if existing else rid,
        type=LOCK_TYPE,
        body={"id": existing.id if existing else rid, "type": LOCK_TYPE, "name": existing.name if existing else name,
              "properties": props, "systemData": system},
    )
    ctx.store.put(resource)
    return resource, existing is None


def get_lock(ctx: Context, scope: str, name: str) -> Resource:
    canonical = resolve_scope(ctx, scope)
    found = ctx.store.get(lock_id(canonical, name))
    if found is None:
        raise NotFound(f"The lock '{name}' could not be found.", code="LockNotFound")
    return found


def delete_lock(ctx: Context, scope: str, name: str) -> bool:
    """Remove a lock; False when there was none (ARM answers 204 then)."""
    canonical = resolve_scope(ctx, scope)
    return ctx.store.delete(lock_id(canonical, name))


def _at_scope_only(flt: str | None) -> bool:
    return bool(flt) and "atscope()" in (flt or "").replace(" ", "").lower()


def list_locks(ctx: Context, scope: str, flt: str | None) -> list[Resource]:
    """Locks that apply to ``scope`` (its own and inherited) and, unless ``atScope()``, those beneath it."""
    canonical = resolve_scope(ctx, scope)
    below = not _at_scope_only(flt)
    locks = ctx.store.of_type(LOCK_TYPE, f"/subscriptions/{ctx.subscription}")
    return [lock for lock in locks if _related(canonical, _extension_scope(lock), below=below)]


# role definitions --------------------------------------------------------------------------
def role_definition_body(ctx: Context, role: BuiltinRole, *, tenant_level: bool = False) -> dict[str, Any]:
    prefix = "" if tenant_level else f"/subscriptions/{ctx.subscription}"
    return {
        "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role.id}",
        "type": DEFINITION_TYPE,
        "name": role.id,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [{
                "actions": list(role.actions),
                "notActions": list(role.not_actions),
                "dataActions": list(role.data_actions),
                "notDataActions": [],
            }],
            "createdOn": role.created_on,
            "updatedOn": role.updated_on,
            "createdBy": None,
            "updatedBy": None,
        },
    }


def _role(role_definition_id: str) -> BuiltinRole:
    role = ROLES.get(role_definition_id.lower())
    if role is None:
        raise NotFound(f"The specified role definition with ID '{role_definition_id}' does not exist.",
                       code="RoleDefinitionDoesNotExist")
    return role


def get_role_definition(ctx: Context, scope: str, role_definition_id: str) -> dict[str, Any]:
    if scope:
        resolve_scope(ctx, scope)
    return role_definition_body(ctx, _role(role_definition_id), tenant_level=not scope)


def list_role_definitions(ctx: Context, scope: str, flt: str | None) -> list[dict[str, Any]]:
    """Built-in roles (assignable everywhere); ``$filter`` ``roleName eq '...'`` or ``type eq '...'``."""
    if scope:
        resolve_scope(ctx, scope)
    terms = {k.lower(): v for k, v in re.findall(r"(\w+)\s+eq\s+'([^']*)'", flt or "")}
    out = []
    for role in ROLES.values():
        if "rolename" in terms and role.name.lower() != terms["rolename"].lower():
            continue
        if "type" in terms and terms["type"].lower() != "builtinrole":
            continue
        out.append(role_definition_body(ctx, role, tenant_level=not scope))
    return out


# role assignments --------------------------------------------------------------------------
def assignment_id(scope: str, name: str) -> str:
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"


def _check_name(name: str) -> None:
    if not is_guid(name):
        raise BadRequest(
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
            code="InvalidRoleAssignmentId",
        )


def _role_definition_of(ctx: Context, value: Any) -> str:
    """The canonical subscription-level id of an existing role definition, else ARM's 400s."""
    m = _ROLE_DEF_ID.match(value) if isinstance(value, str) else None
    if m is None or not is_guid(m.group("id")):
        raise BadRequest(f"The role definition ID '{value}' is not valid.", code="InvalidRoleDefinitionId")
    guid = m.group("id")
    sub = m.group("sub")
    if guid.lower() not in ROLES or (sub is not None and sub.lower() != ctx.subscription.lower()):
        raise BadRequest(f"The specified role definition with ID '{guid}' does not exist.",
                         code="RoleDefinitionDoesNotExist")
    return role_definition_body(ctx, ROLES[guid.lower()])["id"]


def put_assignment(
    ctx: Context, scope: str, name: str, body: dict[str, Any], claims: dict[str, Any]
) -> tuple[Resource, bool]:
    """Create a role assignment. Only description/condition may change on an existing one."""
    _check_name(name)
    canonical = resolve_scope(ctx, scope)
    props = body.get("properties")
    if not isinstance(props, dict):
        raise BadRequest("The request content was invalid and could not be deserialized: 'properties' is required.",
                         code="InvalidRequestContent")
    if not is_guid(props.get("principalId")):
        raise BadRequest(f"The Principal ID '{props.get('principalId')}' is not valid. Principal ID must be a GUID.",
                         code="InvalidPrincipalId")
    principal = str(props["principalId"])
    role_def = _role_definition_of(ctx, props.get("roleDefinitionId"))
    principal_type = props.get("principalType") or "User"
    if principal_type not in PRINCIPAL_TYPES:
        raise BadRequest(
            f"The request content was invalid and could not be deserialized: 'Requested value '{principal_type}' "
            "was not found.' Path 'properties.principalType'.",
            code="InvalidRequestContent",
        )
    rid = assignment_id(canonical, name)
    existing = ctx.store.get(rid)
    if existing is not None:
        old = existing.properties
        if (old["principalId"].lower() != principal.lower() or old["roleDefinitionId"].lower() != role_def.lower()):
            raise Conflict("Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                           code="RoleAssignmentUpdateNotPermitted")
    else:
        for other in ctx.store.of_type(ASSIGNMENT_TYPE, f"/subscriptions/{ctx.subscription}"):
            p = other.properties
            if (p["scope"].lower() == canonical.lower() and p["principalId"].lower() == principal.lower()
                    and p["roleDefinitionId"].lower() == role_def.lower()):
                raise Conflict(
                    "The role assignment already exists. The ID of the existing role assignment is "
                    f"{other.name.replace('-', '').lower()}.",
                    code="RoleAssignmentExists",
                )
    stamp, who = now_iso(), _caller(claims)
    properties = {
        "roleDefinitionId": role_def,
        "principalId": principal,
        "principalType": principal_type,
        "scope": canonical,
        "condition": props.get("condition"),
        "conditionVersion": props.get("conditionVersion") or ("2.0" if props.get("condition") else None),
        "createdOn": existing.properties["createdOn"] if existing else stamp,
        "updatedOn": stamp,
        "createdBy": existing.properties["createdBy"] if existing else who,
        "updatedBy": who,
        "delegatedManagedIdentityResourceId": props.get("delegatedManagedIdentityResourceId"),
        "description": props.get("description"),
    }
    final_id = existing.id if existing else rid
    resource = Resource(id=final_id, type=ASSIGNMENT_TYPE, body={
        "id": final_id, "type": ASSIGNMENT_TYPE, "name": existing.name if existing else name,
        "properties": properties,
    })
    ctx.store.put(resource)
    return resource, existing is None


def get_assignment(ctx: Context, scope: str, name: str) -> Resource:
    _check_name(name)
    canonical = resolve_scope(ctx, scope)
    found = ctx.store.get(assignment_id(canonical, name))
    if found is None:
        raise NotFound(f"The role assignment '{name}' is not found.", code="RoleAssignmentNotFound")
    return found


def delete_assignment(ctx: Context, scope: str, name: str) -> Resource | None:
    """Remove a role assignment and return it; None when there was none (ARM answers 204)."""
    _check_name(name)
    canonical = resolve_scope(ctx, scope)
    found = ctx.store.get(assignment_id(canonical, name))
    if found is not None:
        ctx.store.delete(found.id)
    return found


def list_assignments(ctx: Context, scope: str | None, flt: str | None) -> list[Resource]:
    """Assignments at, above and below ``scope`` (the whole subscription when None).

    ``$filter``: ``atScope()`` keeps those at or above; ``principalId eq '{id}'`` and
    ``assignedTo('{id}')`` keep one principal's.
    """
    canonical = resolve_scope(ctx, scope) if scope else f"/subscriptions/{ctx.subscription}"
    text = flt or ""
    principal = re.search(r"principalId\s+eq\s+'([^']*)'", text, re.IGNORECASE) or re.search(
        r"assignedTo\('([^']*)'\)", text, re.IGNORECASE)
    below = not _at_scope_only(text)
    out = []
    for item in ctx.store.of_type(ASSIGNMENT_TYPE, f"/subscriptions/{ctx.subscription}"):
        if not _related(canonical, item.properties["scope"], below=below):
            continue
        if principal and item.properties["principalId"].lower() != principal.group(1).lower():
            continue
        out.append(item)
    return out

