"""Routes of Microsoft.Authorization: every operation takes a scope (subscription, group or resource).

The SDKs put the scope in the path as is (role assignments) or percent-encoded (``*_by_scope``
lock calls); the router unquotes it and collapses the doubled slash before matching.
"""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.services.authorization import responses as r

_SCOPE_BODY = r"/subscriptions/(?P<subscription>[^/]+)(?:/resourceGroups/[^/]+(?:/providers/.+?)?)?"
SCOPE = rf"(?P<scope>{_SCOPE_BODY})"
SCOPE_OR_TENANT = rf"(?P<scope>(?:{_SCOPE_BODY})?)"  # role definitions also exist at the tenant root
AUTHZ = r"/providers/Microsoft\.Authorization"
NAME = r"/(?P<name>[^/]+)"

LOCKS = SCOPE + AUTHZ + r"/locks"
ASSIGNMENTS = SCOPE + AUTHZ + r"/roleAssignments"
DEFINITIONS = SCOPE_OR_TENANT + AUTHZ + r"/roleDefinitions"

router = Router()
router.add("GET", LOCKS, "Microsoft.Authorization/locks/read")(r.list_locks)
router.add("PUT", LOCKS + NAME, "Microsoft.Authorization/locks/write")(r.put_lock)
router.add("GET", LOCKS + NAME, "Microsoft.Authorization/locks/read")(r.get_lock)
router.add("DELETE", LOCKS + NAME, "Microsoft.Authorization/locks/delete")(r.delete_lock)

router.add("GET", DEFINITIONS, "Microsoft.Authorization/roleDefinitions/read")(r.list_role_definitions)
router.add("GET", DEFINITIONS + NAME, "Microsoft.Authorization/roleDefinitions/read")(r.get_role_definition)

router.add("GET", ASSIGNMENTS, "Microsoft.Authorization/roleAssignments/read")(r.list_role_assignments)
router.add("PUT", ASSIGNMENTS + NAME, "Microsoft.Authorization/roleAssignments/write")(r.put_role_assignment)
router.add("GET", ASSIGNMENTS + NAME, "Microsoft.Authorization/roleAssignments/read")(r.get_role_assignment)
router.add("DELETE", ASSIGNMENTS + NAME, "Microsoft.Authorization/roleAssignments/delete")(r.delete_role_assignment)
