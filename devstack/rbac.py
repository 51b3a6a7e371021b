"""Which Azure RBAC action an ARM request needs, and whether a custom role allows it.

ARM authorizes every request by one action derived from the URL: the resource provider's namespace,
then the resource *types* of the path (names dropped), then a verb. ``GET``/``HEAD`` need ``/read``,
``PUT``/``PATCH`` ``/write``, ``DELETE`` ``/delete``, and ``POST .../{name}/x`` ``/x/action``. Paths
without ``/providers/`` belong to Microsoft.Resources (subscriptions, resource groups, their
``operationresults``). Extension resources (locks, role assignments) take the namespace after the
*last* ``/providers/``. An operation-status URL (``.../locations/{loc}/operations/{id}``) is an
ordinary GET, so it needs the provider's operation-read action (``STATUS_READS`` where the provider
names it otherwise).

Some requests are not authorized by RBAC at all and map to no action (``not_rbac``): sign-in and
cloud metadata (Entra ID, the instance metadata service) and the local Azure's own ``/_emulator/``
API, which has no Azure counterpart. Blob data (page blob uploads, reads and deletes) goes to the
storage account's blob endpoint with the account key the factory lists (``listKeys/action``), so it
is authorized by the key, not by RBAC, and never reaches ARM.

ARM also checks *linked* actions on resources a write references ("LinkedAuthorizationFailed"):
``join/action`` on the subnet, public IP, NSG or NIC it attaches. They never appear as requests,
so ``LINKED_ACTIONS`` lists the ones the factory's own request bodies always cause. Deleting a
resource group needs delete on everything in it (``group_delete_actions``).

Pure (no I/O): it reads any (method, path) list, e.g. the local Azure's request log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
RESOURCES = "Microsoft.Resources"
# canonical spellings of path segments the SDKs send in another case (ARM compares case-insensitively)
CANONICAL = {"resourcegroups": "resourceGroups"}
# provider-level POSTs that ARM authorizes as reads
POST_READS = {"microsoft.storage/checknameavailability"}
# operation-status URLs whose provider registers another action for them: Microsoft.Storage lists no
# locations/asyncoperations action; its "Polls the status of an asynchronous operation" is operations/read
STATUS_READS = {"microsoft.storage/locations/asyncoperations/read": "Microsoft.Storage/operations/read"}
# linked checks: the factory's VNet puts the NSG on its subnet, its NIC joins that subnet and a public IP,
# and every VM it creates joins its NIC
LINKED_ACTIONS: dict[str, tuple[str, ...]] = {
    "microsoft.network/virtualnetworks/write": ("Microsoft.Network/networkSecurityGroups/join/action",),
    "microsoft.network/networkinterfaces/write": ("Microsoft.Network/virtualNetworks/subnets/join/action",
                                                  "Microsoft.Network/publicIPAddresses/join/action"),
    "microsoft.compute/virtualmachines/write": ("Microsoft.Network/networkInterfaces/join/action",),
}
# resources Azure creates in the group along with a resource: a VM's managed OS disk
CREATED_WITH = {"microsoft.compute/virtualmachines": ("Microsoft.Compute/disks/delete",)}
# path markers of requests RBAC does not authorize, with why (first match wins)
NOT_RBAC = {
    "/_emulator/": "the local Azure's own operations API (no Azure counterpart)",
    "/metadata/": "instance metadata service or cloud metadata",
    "/msi/": "managed identity token endpoint",
    "/oauth2/": "sign-in (Entra ID token endpoint)",
    "/.well-known/": "sign-in metadata (Entra ID)",
}
ARM_ROOTS = ("subscriptions", "providers", "tenants")
ROLE_KEYS = ("Name", "IsCustom", "Description", "Actions", "NotActions", "DataActions", "NotDataActions",
             "AssignableScopes")


class UnmappedRequest(ValueError):
    """An ARM-looking request whose action this module cannot derive: better loud than a silent pass."""


def normalise(path: str) -> str:
    """The path as ARM routes it: no query, percent-decoding undone, no doubled or trailing slash."""
    path = unquote(path.split("?", 1)[0])
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"


def not_rbac(path: str) -> str | None:
    """Why RBAC does not authorize this request, or None when it is an ARM request (or unknown)."""
    low = normalise(path).lower() + "/"
    if low.split("/")[1] in ARM_ROOTS:  # a resource named e.g. "metadata" stays an ARM request
        return None
    for marker, why in NOT_RBAC.items():
        if marker in low:
            return why
    return None


def required_action(method: str, path: str) -> str | None:
    """The RBAC action ARM checks for ``method path``; None for a request RBAC does not authorize."""
    if not_rbac(path) is not None:
        return None
    segments = normalise(path).strip("/").split("/")
    if not segments[0] or segments[0].lower() not in ARM_ROOTS:
        raise UnmappedRequest(f"{method} {path}: not an ARM path")
    lowered = [s.lower() for s in segments]
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        if at + 2 > len(segments) - 1:  # /providers or /providers/{namespace}: the provider registry
            raise UnmappedRequest(f"{method} {path}: a provider registration path")
        namespace, rest = segments[at + 1], segments[at + 2:]
    else:
        namespace, rest = RESOURCES, segments
    return _action(method.upper(), namespace, rest, f"{method} {path}")


def _action(method: str, namespace: str, rest: list[str], request: str) -> str:
    """Types are the even positions of ``rest`` (names the odd ones); an odd-length rest ends in a type:
    a collection or singleton child to read, or the operation a POST invokes."""
    if method == "POST":
        if len(rest) % 2 == 0:
            raise UnmappedRequest(f"{request}: a POST to a resource itself names no action")
        types = [CANONICAL.get(t.lower(), t) for t in rest[:-1:2]]
        base = "/".join([namespace, *types, rest[-1]])
        return f"{base}/read" if base.lower() in POST_READS else f"{base}/action"
    verb = VERBS.get(method)
    if verb is None:
        raise UnmappedRequest(f"{request}: method {method} has no RBAC verb")
    types = [CANONICAL.get(t.lower(), t) for t in rest[::2]]
    action = "/".join([namespace, *types, verb])
    return STATUS_READS.get(action.lower(), action)


def group_delete_actions(requests: Iterable[tuple[str, str]]) -> set[str]:
    """The delete actions ARM also checks when a resource group is deleted: delete on every resource in it.

    Azure: "To delete a resource group, you need access to the delete action. You also need delete for all
    resources in the resource group." The resources are the top-level ones ``requests`` (method, path)
    created in each group they delete, and what Azure creates with them (``CREATED_WITH``).
    """
    created: dict[str, set[str]] = {}
    deleted: set[str] = set()
    for method, path in requests:
        if not_rbac(path) is not None:
            continue
        segments = normalise(path).strip("/").split("/")
        lowered = [s.lower() for s in segments]
        if len(segments) < 4 or lowered[0] != "subscriptions" or lowered[2] != "resourcegroups":
            continue
        group = lowered[3]
        if len(segments) == 4 and method.upper() == "DELETE":
            deleted.add(group)
        elif (method.upper() == "PUT" and len(segments) >= 8 and lowered[4] == "providers"
              and lowered[5] != "microsoft.authorization" and "providers" not in lowered[5:]):
            # extension resources (locks, role assignments) are not resources in the group
            kind = f"{segments[5]}/{segments[6]}"
            created.setdefault(group, set()).update({f"{kind}/delete", *CREATED_WITH.get(kind.lower(), ())})
    return {action for group in deleted for action in created.get(group, ())}


def linked_actions(action: str) -> tuple[str, ...]:
    """The join actions ARM also checks when the factory performs ``action`` (see LINKED_ACTIONS)."""
    return LINKED_ACTIONS.get(action.lower(), ())


def matches(pattern: str, action: str) -> bool:
    """Azure's rule: case-insensitive, ``*`` stands for any characters (``/`` included)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


@dataclass(frozen=True)
class Role:
    """The control-plane half of a role definition: Actions minus NotActions."""

    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Role:
        """From the JSON ``az role definition create --role-definition`` takes (keys in any case)."""
        keys = {k.lower(): v for k, v in definition.items()}
        return cls(name=str(keys.get("name", "")), actions=tuple(keys.get("actions") or ()),
                   not_actions=tuple(keys.get("notactions") or ()))

    def allows(self, action: str) -> bool:
        return (any(matches(p, action) for p in self.actions)
                and not any(matches(p, action) for p in self.not_actions))

    def unused(self, performed: Iterable[str]) -> list[str]:
        """The role's Actions that match none of ``performed``: grants nobody needed."""
        done = list(performed)
        return [p for p in self.actions if not any(matches(p, a) for a in done)]
