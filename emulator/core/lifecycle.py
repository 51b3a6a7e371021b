"""Side effects of resources leaving the emulator, registered per resource type.

Deleting a resource group deletes everything in it; a VM going away must also stop its guest
and free its disks. Services register what happens when one of their resources is removed.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.core.context import Context
from emulator.core.store import Resource

Remover = Callable[[Context, Resource], None]
_REMOVERS: dict[str, Remover] = {}


def on_remove(resource_type: str) -> Callable[[Remover], Remover]:
    def wrap(fn: Remover) -> Remover:
        _REMOVERS[resource_type.lower()] = fn
        return fn

    return wrap


def remove(ctx: Context, resource: Resource) -> None:
    """Delete ``resource`` from the store after running its type's side effects."""
    fn = _REMOVERS.get(resource.type.lower())
    if fn is not None:
        fn(ctx, resource)
    ctx.store.delete(resource.id)
