"""LIFECYCLE hook choosing the guest runtimes: simulated always, QEMU for Linux when selected.

Runs after the simulated runtime's hook (which puts itself in ``ctx.extras["guests"]``) and
before compute's. With ``LOCAL_AZURE_LINUX_RUNTIME=qemu`` it starts the QEMU runtime, wraps both
in a ``GuestRouter`` as ``ctx.extras["guests"]`` and lets the cached QEMU base image serve the
Debian 12 Marketplace SKUs. In simulated mode it changes nothing. At shutdown it puts the
simulated runtime back (its own hook closes it next) and powers the QEMU guests off.
"""

from __future__ import annotations

from typing import Any

from emulator.core.context import Context
from emulator.guests.router import GuestRouter

GUESTS = "guests"
CATALOGUE = "qemu_catalogue_provider"


class RuntimesLifecycle:
    async def startup(self, ctx: Context) -> None:
        from emulator.guests.qemu.runtime import linux_runtime_name

        if linux_runtime_name() != "qemu":
            return
        from emulator.guests.qemu import catalogue
        from emulator.guests.qemu.runtime import lifecycle as qemu_lifecycle
        from emulator.services.compute import marketplace

        await qemu_lifecycle.startup(ctx)
        qemu = ctx.extras["qemu_guests"]
        simulated = ctx.extras.get(GUESTS)
        runtimes: dict[str, Any] = {"qemu": qemu}
        if simulated is not None:
            runtimes["simulated"] = simulated
        ctx.extras[GUESTS] = GuestRouter(
            runtimes, default="simulated" if simulated is not None else "qemu",
            knows={"qemu": lambda vm_id: qemu._vm(vm_id) is not None},  # a VM dir under <state>/guests
        )

        def provider() -> list[dict[str, Any]]:
            return catalogue.entries()

        ctx.extras[CATALOGUE] = provider
        marketplace.register_provider(provider)

    async def shutdown(self, ctx: Context) -> None:
        router = ctx.extras.get(GUESTS)
        if not isinstance(router, GuestRouter):
            return
        from emulator.guests.qemu.runtime import lifecycle as qemu_lifecycle
        from emulator.services.compute import marketplace

        provider = ctx.extras.pop(CATALOGUE, None)
        if provider is not None:
            marketplace.unregister_provider(provider)
        if router.simulated is not None:
            ctx.extras[GUESTS] = router.simulated
        else:
            ctx.extras.pop(GUESTS, None)
        await qemu_lifecycle.shutdown(ctx)


lifecycle = RuntimesLifecycle()
