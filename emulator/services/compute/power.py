"""VM power actions: start, powerOff, deallocate, restart (asynchronous) and generalize (synchronous).

Each asynchronous action records the operation the VM now waits on and asks the guest runtime
to act; the guest's event settles it (models.guest_booted / guest_stopped). An action the VM is
already in answers with an operation that is done; a newer action preempts a pending one.
"""

from __future__ import annotations

from emulator.core.context import Context
from emulator.core.store import Resource
from emulator.services.compute import models, quota, runtime


def begin_action(ctx: Context, group: str, name: str, action: str, fail_with: dict[str, str] | None, *,
                 skip_shutdown: bool = False) -> tuple[str, str]:
    """start / powerOff / deallocate / restart: answers (operation id, location)."""
    vm = models.get_vm(ctx, group, name)
    models.refuse_if_deleting(vm, action)
    handlers = {"start": _start, "powerOff": _power_off, "deallocate": _deallocate, "restart": _restart}
    op = handlers[action](ctx, vm, fail_with, skip_shutdown)
    return op, vm.body["location"]


def _start(ctx: Context, vm: Resource, fail_with: dict[str, str] | None, _skip: bool) -> str:
    if vm.internal.get("generalized"):
        raise models.not_allowed(vm, "start", "generalized")
    pending = vm.internal.get("pending") or {}
    if pending.get("action") in ("create", "start", "restart"):
        return str(pending["op"])
    if vm.internal.get("power") == "running" and not pending:
        return models.done_operation(ctx, vm)
    rt = runtime.get(ctx)
    if vm.internal.get("power") == "deallocated":  # it needs a machine again: Azure checks the vCPU quota
        quota.allocate(ctx, vm.body["location"], models.vm_size(vm))
    vm = models.preempt(ctx, vm)
    op = models.begin(ctx, vm, "start", delay=None, fail_with=fail_with)
    models.set_state(ctx, vm, provisioning="Updating", power="starting" if fail_with is None else None)
    ctx.store.put(vm)
    quota.record(ctx, vm.body["location"])
    if fail_with is None:
        models.boot_guest(ctx, rt, vm)
    return op


def _power_off(ctx: Context, vm: Resource, fail_with: dict[str, str] | None, skip_shutdown: bool) -> str:
    pending = vm.internal.get("pending") or {}
    if pending.get("action") in ("powerOff", "deallocate"):
        return str(pending["op"])
    if vm.internal.get("power") in models.STOPPED and not pending:
        return models.done_operation(ctx, vm)
    rt = runtime.get(ctx)
    vm = models.preempt(ctx, vm)
    op = models.begin(ctx, vm, "powerOff", delay=None, fail_with=fail_with)
    models.set_state(ctx, vm, provisioning="Updating", power="stopping" if fail_with is None else None)
    ctx.store.put(vm)
    if fail_with is None:
        models.shutdown_guest(ctx, rt, vm, force=skip_shutdown)
    return op


def _deallocate(ctx: Context, vm: Resource, fail_with: dict[str, str] | None, _skip: bool) -> str:
    pending = vm.internal.get("pending") or {}
    if pending.get("action") == "deallocate":
        return str(pending["op"])
    power = vm.internal.get("power")
    if power == "deallocated" and not pending:
        return models.done_operation(ctx, vm)
    vm = models.preempt(ctx, vm)
    guest_up = power not in models.STOPPED
    delay = None if guest_up else ctx.duration(models.DEALLOCATE_SECONDS)  # a stopped VM needs no guest
    op = models.begin(ctx, vm, "deallocate", delay=delay, fail_with=fail_with)
    models.set_state(ctx, vm, provisioning="Updating", power="deallocating" if fail_with is None else None)
    ctx.store.put(vm)
    if guest_up and fail_with is None:
        models.shutdown_guest(ctx, runtime.get(ctx), vm, force=False)
    return op


def _restart(ctx: Context, vm: Resource, fail_with: dict[str, str] | None, _skip: bool) -> str:
    if vm.internal.get("generalized"):
        raise models.not_allowed(vm, "restart", "generalized")
    pending = vm.internal.get("pending") or {}
    if pending.get("action") in ("create", "start", "restart"):
        return str(pending["op"])
    if vm.internal.get("power") in ("deallocated", "deallocating"):
        raise models.not_allowed(vm, "restart", "deallocated")
    rt = runtime.get(ctx)
    vm = models.preempt(ctx, vm)
    up = vm.internal.get("power") in ("running", "starting")
    op = models.begin(ctx, vm, "restart", delay=None, fail_with=fail_with, phase="stopping" if up else "starting")
    models.set_state(ctx, vm, provisioning="Updating")
    if fail_with is None:
        models.set_state(ctx, vm, power="stopping" if up else "starting")
    ctx.store.put(vm)
    if fail_with is None:
        if up:
            models.shutdown_guest(ctx, rt, vm, force=False)
        else:
            models.boot_guest(ctx, rt, vm)
    return op


def generalize(ctx: Context, group: str, name: str) -> None:
    """Mark the OS generalized (synchronous); only a stopped or deallocated VM can be."""
    vm = models.get_vm(ctx, group, name)
    models.refuse_if_deleting(vm, "generalize")
    stopped = vm.internal.get("power") in models.STOPPED
    if not stopped or vm.internal.get("pending"):
        raise models.not_allowed(vm, "generalize", "updating" if stopped else "running")
    vm.internal["generalized"] = True
    models.set_state(ctx, vm)
    ctx.store.put(vm)
