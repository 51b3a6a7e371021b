"""Management locks as ARM enforces them: CanNotDelete blocks deletes, ReadOnly blocks writes too.

A lock applies to its scope and everything beneath it; deleting a scope is also refused when
anything beneath it is locked (a resource group holding a locked gallery cannot be deleted).
"""

from __future__ import annotations

from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.store import Resource

LOCK_TYPE = "Microsoft.Authorization/locks"


def lock_scope(lock: Resource) -> str:
    return lock.id.rsplit("/providers/", 1)[0]


def _locks(ctx: Context) -> list[Resource]:
    return ctx.store.of_type(LOCK_TYPE, f"/subscriptions/{ctx.subscription}")


def enforce(ctx: Context, target: str, action: str) -> None:
    """Raise ScopeLocked if ``action`` ("delete" or "write") on ``target`` is blocked by a lock."""
    t = target.lower().rstrip("/")
    blocking: list[str] = []
    for lock in _locks(ctx):
        level = lock.properties.get("level", "")
        if action == "write" and level != "ReadOnly":
            continue
        scope = lock_scope(lock).lower()
        covers = t == scope or t.startswith(scope + "/")
        inside = action == "delete" and scope.startswith(t + "/")
        if covers or inside:
            blocking.append(lock_scope(lock))
    if blocking:
        scopes = ",".join(f"'{s}'" for s in dict.fromkeys(blocking))
        raise ArmError(
            f"The scope '{target}' cannot perform {action} operation because following scope(s) are locked: "
            f"{scopes}. Please remove the lock and try again.",
            code="ScopeLocked",
            status=409,
        )


def target_of(method: str, path: str) -> tuple[str, str] | None:
    """The resource a mutating call acts on and whether it deletes or writes; None if exempt."""
    low = path.lower()
    if method in ("GET", "HEAD") or "/providers/microsoft.authorization/" in low:
        return None
    if "/operations/" in low or "/capsoperations/" in low or "/operationresults/" in low:
        return None
    parts = path.rstrip("/").split("/")
    if method == "POST":
        parts = parts[:-1]  # .../virtualMachines/vm/start acts on the VM
    return "/".join(parts), "delete" if method == "DELETE" else "write"
