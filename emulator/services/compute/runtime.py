"""Compute's side of the guest contract (emulator/guests/base.py): finding the runtime, receiving
its events, and adopting guests again after an emulator restart.

The runtime lives in ``ctx.extras["guests"]`` (put there by its own lifecycle hook); compute
puts its ``GuestEvents`` sink in ``ctx.extras["guest_events"]``. Events arrive from any thread;
each one runs in a store transaction and never raises into the runtime.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.guests.base import GuestRuntime
from emulator.services.compute import models

log = logging.getLogger("emulator.compute")

GUESTS = "guests"
EVENTS = "guest_events"
RECOVERED = "compute.recovered_runtime"


class Events:
    """``GuestEvents`` for compute: a guest booted, stopped or failed; ARM state follows."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def booted(self, vm_id: str) -> None:
        self._apply("guest_booted", vm_id)

    def stopped(self, vm_id: str) -> None:
        self._apply("guest_stopped", vm_id)

    def failed(self, vm_id: str, code: str, message: str) -> None:
        self._apply("guest_failed", vm_id, code, message)

    def _apply(self, name: str, *args: Any) -> None:
        try:
            with self.ctx.store.tx():
                getattr(models, name)(self.ctx, *args)
        except Exception:  # the runtime's thread must survive whatever compute does with the event
            log.exception("compute could not apply guest event %s%r", name, args)


def install_events(ctx: Context) -> Events:
    events = ctx.extras.get(EVENTS)
    if not isinstance(events, Events):
        events = Events(ctx)
        ctx.extras[EVENTS] = events
    return events


def find(ctx: Context) -> GuestRuntime | None:
    """The runtime if one is configured (after making sure it has been told about running VMs)."""
    rt: GuestRuntime | None = ctx.extras.get(GUESTS)
    if rt is not None:
        install_events(ctx)
        if ctx.extras.get(RECOVERED) is not rt:
            ctx.extras[RECOVERED] = rt
            recover(ctx, rt)
    return rt


def get(ctx: Context) -> GuestRuntime:
    rt = find(ctx)
    if rt is None:
        raise ArmError(
            "The local Azure has no guest runtime configured, so virtual machines cannot run.",
            code="InternalServerError", status=500,
        )
    return rt


def recover(ctx: Context, rt: GuestRuntime) -> None:
    """Hand the runtime the guests ARM believes are running; finish stops it no longer sees."""
    with ctx.store.tx():
        specs = models.recovery_specs(ctx)
    try:
        rt.recover(specs)
    except Exception:
        log.exception("guest runtime could not recover %d guest(s)", len(specs))
    with ctx.store.tx():
        models.after_recover(ctx, rt)


def base_disk(os_type: str, image: str, version: str | None = None) -> dict[str, Any]:
    """A Marketplace entry's OS disk, from the simulated guests' base images."""
    from emulator.guests.simulated.disk import base_disk as simulated_base_disk

    return simulated_base_disk(os_type, image, version)


def release_disk(ctx: Context, disk: dict[str, Any]) -> None:
    rt = ctx.extras.get(GUESTS)
    if rt is None:
        return
    try:
        rt.release_disk(disk)
    except Exception:
        log.exception("guest runtime could not release a disk")


def destroy(ctx: Context, vm_id: str) -> None:
    rt = ctx.extras.get(GUESTS)
    if rt is None:
        return
    try:
        rt.destroy(vm_id)
    except Exception:
        log.exception("guest runtime could not destroy %s", vm_id)


class Hook:
    """LIFECYCLE hook: the events sink exists before any guest can fire; recover when possible."""

    async def startup(self, ctx: Context) -> None:
        from emulator.services.compute import runcommand

        install_events(ctx)
        runcommand.fail_orphans(ctx)
        find(ctx)

    async def shutdown(self, ctx: Context) -> None:
        ctx.extras.pop(EVENTS, None)


hook = Hook()
