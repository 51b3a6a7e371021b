"""The emulated services. Each has urls.py (routes), responses.py (parse + answer), models.py (state)."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from emulator.core.context import Context
from emulator.core.routing import Router

# ARM services: every call needs a bearer token.
ARM_SERVICES = [
    "emulator.services.resources.urls",
    "emulator.services.authorization.urls",
    "emulator.services.network.urls",
    "emulator.services.compute.urls",
    "emulator.services.gallery.urls",
    "emulator.services.storage.urls",
]
# Endpoints outside ARM's authentication: sign-in, cloud metadata, the emulator's own operations.
PUBLIC_SERVICES = [
    "emulator.services.identity.urls",
    "emulator.ops.urls",
    "emulator.services.gallery.ops_urls",
    "emulator.services.compute.ops_urls",
    "emulator.services.storage.ops_urls",
    "emulator.storage.urls",
    "emulator.guests.simulated.urls",
]
# Objects with async startup(ctx)/shutdown(ctx): e.g. the guest runtimes.
LIFECYCLE: list[str] = [
    "emulator.guests.simulated.runtime:lifecycle",
    "emulator.guests.lifecycle:lifecycle",  # QEMU guests when selected: wraps the runtimes in a router
    "emulator.services.compute.runtime:hook",
    "emulator.services.gallery.replication:lifecycle",
    "emulator.services.storage.models:lifecycle",  # Azurite, which serves the storage accounts' blob data
]


class Lifecycle(Protocol):
    async def startup(self, ctx: Context) -> None: ...
    async def shutdown(self, ctx: Context) -> None: ...


def _router(modules: list[str]) -> Router:
    router = Router()
    for name in modules:
        router.include(importlib.import_module(name).router)
    return router


def arm_router() -> Router:
    return _router(ARM_SERVICES)


def public_router() -> Router:
    return _router(PUBLIC_SERVICES)


def lifecycle_hooks() -> list[Lifecycle]:
    hooks: list[Any] = []
    for spec in LIFECYCLE:
        module, _, attr = spec.partition(":")
        hooks.append(getattr(importlib.import_module(module), attr))
    return hooks
