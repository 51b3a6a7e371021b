"""Who may delete and who may use the golden images: management locks and RBAC role assignments.

The gallery's resource group carries the factory's CanNotDelete lock, so no one deletes published
images by accident (the reference advice: golden images live in a locked resource group). The
factory lifts only its own lock, and only for the moment its retention deletes a version; any other
lock stays and keeps what it protects. Image definitions are shared by role assignments at their
scope, with deterministic names, so a retried task never assigns a role twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from image_factory.hooks.arm import AzureResourceManagerHook
from image_factory.hooks.lookup import get_or_none
from image_factory.naming import FACTORY_LOCK, role_assignment_name

CAN_NOT_DELETE = "CanNotDelete"
LOCK_NOTES = (
    "Made by the golden-image factory: this group holds published golden images, which must not be "
    "deleted by accident. The factory lifts this lock only while its own retention deletes a version."
)
SHARE_DESCRIPTION = "Shared by the golden-image factory (sharing in the image definition)."
_LOCK_SUFFIX = re.compile(r"/providers/Microsoft\.Authorization/locks/[^/]+$", re.IGNORECASE)


class UnknownRoleError(ValueError):
    """No role definition with that name exists at the scope: the definition names a role Azure lacks."""


def _text(value: Any) -> str | None:
    """An SDK enum or string as plain text."""
    return None if value is None else str(getattr(value, "value", value))


def lock_scope(lock_id: str) -> str:
    """The scope a lock is on: its id without ``/providers/Microsoft.Authorization/locks/{name}``."""
    return _LOCK_SUFFIX.sub("", lock_id)


def _covers(scope: str, resource_id: str) -> bool:
    s, r = scope.lower().rstrip("/"), resource_id.lower().rstrip("/")
    return r == s or r.startswith(s + "/")


class AccessHook(AzureResourceManagerHook):
    """Management locks on the gallery's group and role assignments on image definitions; all idempotent."""

    # locks ----------------------------------------------------------------------------------
    def ensure_delete_lock(self, resource_group: str) -> str:
        """The factory's CanNotDelete lock on the group, created once; its id."""
        locks = self.locks.management_locks
        found = get_or_none(locks.get_at_resource_group_level, resource_group, FACTORY_LOCK)
        if found is not None and _text(found.level) == CAN_NOT_DELETE and found.notes == LOCK_NOTES:
            return str(found.id)
        from azure.mgmt.resource.locks.models import ManagementLockObject

        made = locks.create_or_update_at_resource_group_level(
            resource_group, FACTORY_LOCK, ManagementLockObject(level=CAN_NOT_DELETE, notes=LOCK_NOTES)
        )
        return str(made.id)

    def locks_covering(self, resource_id: str) -> list[dict[str, Any]]:
        """Every lock on the resource or any scope above it (subscription, group, gallery, definition, …).

        A retention job skips what this finds locked by anyone other than the factory.
        """
        found = self.locks.management_locks.list_by_scope(resource_id, filter="atScope()")
        out = []
        for lock in found:
            scope = lock_scope(str(lock.id))
            if _covers(scope, resource_id):  # atScope() already means "here and above"; checked, not trusted
                out.append({"id": str(lock.id), "name": str(lock.name), "level": _text(lock.level), "scope": scope})
        return out

    @contextmanager
    def lock_lifted(self, resource_group: str) -> Iterator[None]:
        """``with hook.lock_lifted(group):`` the factory's own lock is away; afterwards it is back, also on error
        (as it was, or made anew if it was missing: the group is meant to be locked).

        Only FACTORY_LOCK is lifted: a lock someone else placed (on the group or on one version) still
        refuses the delete, as it should.
        """
        locks = self.locks.management_locks
        before = get_or_none(locks.get_at_resource_group_level, resource_group, FACTORY_LOCK)
        if before is not None:
            locks.delete_at_resource_group_level(resource_group, FACTORY_LOCK)
        try:
            yield
        finally:
            if before is None:
                self.ensure_delete_lock(resource_group)
            else:  # as it was, level, notes and owners included
                locks.create_or_update_at_resource_group_level(resource_group, FACTORY_LOCK, before)

    # role assignments -------------------------------------------------------------------------
    def role_definition_id(self, scope: str, role_name: str, *, field: str = "role") -> str:
        """The id of the role called ``role_name`` that is assignable at ``scope``."""
        quoted = role_name.replace("'", "''")
        found = self.authorization.role_definitions.list(scope, filter=f"roleName eq '{quoted}'")
        for role in found:
            if str(role.role_name).lower() == role_name.lower():
                return str(role.id)
        raise UnknownRoleError(
            f"{field}: must name a role definition that exists in Azure (no role named {role_name!r} at {scope}); "
            "built-in examples: Reader, Contributor, Compute Gallery Sharing Admin"
        )

    def ensure_role_assignment(
        self, scope: str, principal_id: str, role_name: str, principal_type: str, *, field: str = "role"
    ) -> str:
        """The assignment of ``role_name`` to the principal at ``scope``, made once; its id.

        ``field`` is how an unknown role is named in the error (e.g. ``sharing[0].role``).
        """
        role_id = self.role_definition_id(scope, role_name, field=field)
        name = role_assignment_name(scope, principal_id, role_id.rsplit("/", 1)[-1])
        assignments = self.authorization.role_assignments
        found = get_or_none(assignments.get, scope, name)
        if found is not None:
            return str(found.id)
        from azure.core.exceptions import ResourceExistsError

        # the client's default API version (the package's top-level models module mixes every version)
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        body = RoleAssignmentCreateParameters(
            role_definition_id=role_id, principal_id=principal_id, principal_type=principal_type,
            description=SHARE_DESCRIPTION,
        )
        try:
            return str(assignments.create(scope, name, body).id)
        except ResourceExistsError as exc:  # the same share made by hand, under another name: that one counts
            if getattr(exc.error, "code", None) != "RoleAssignmentExists":
                raise
            same = self._existing_assignment(scope, principal_id, role_id)
            if same is None:
                raise
            return same

    def _existing_assignment(self, scope: str, principal_id: str, role_id: str) -> str | None:
        wanted_role = role_id.rsplit("/", 1)[-1].lower()
        listed = self.authorization.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal_id}'")
        for a in listed:
            if (str(a.scope).lower().rstrip("/") == scope.lower().rstrip("/")
                    and str(a.role_definition_id).rsplit("/", 1)[-1].lower() == wanted_role):
                return str(a.id)
        return None
