"""Run Command: a script run inside the guest without SSH, answered in Azure's RunCommandResult format.

The script runs in a worker thread (the runtime's ``run_command`` blocks); the operation settles
with the result once it returns, after the request that started it has committed.
"""

from __future__ import annotations

import shlex
import threading
from typing import Any

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.errors import InvalidParameter, OperationNotAllowed
from emulator.guests.base import GuestRuntime, RunResult
from emulator.services.compute import models, runtime, vms

RUN_COMMAND_TIMEOUT = 5400.0  # Azure stops a Run Command script after 90 minutes
OUTPUT_TAIL = 4096  # Run Command returns the last 4 KiB of each stream
COMMANDS = {"RunShellScript": "Linux", "RunPowerShellScript": "Windows"}
HANDLER = "compute.run_command"


def _script(command: str, lines: list[str], parameters: list[dict[str, Any]]) -> list[str]:
    """Run Command parameters: named ones as variables, unnamed ones as positional arguments (Linux)."""
    prelude = []
    positional = []
    for p in parameters:
        pname, value = str(p.get("name") or ""), str(p.get("value") or "")
        if command == "RunPowerShellScript":
            if pname:
                prelude.append(f"${pname} = '{value.replace(chr(39), chr(39) * 2)}'")
        elif pname:
            prelude.append(f"export {pname}={shlex.quote(value)}")
        else:
            positional.append(shlex.quote(value))
    if positional:
        prelude.append("set -- " + " ".join(positional))
    return prelude + lines


def _tail(text: str) -> str:
    data = text.encode()
    return data[-OUTPUT_TAIL:].decode(errors="replace") if len(data) > OUTPUT_TAIL else text


def run_command_result(os_type: str, result: RunResult) -> dict[str, Any]:
    """The RunCommandResult exactly as Azure's Run Command extensions report it."""
    if os_type == "Windows":
        return {"value": [
            {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
             "message": _tail(result.stdout)},
            {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
             "message": _tail(result.stderr)},
        ]}
    # RunCommandLinux reports success whatever the script's exit code; the streams tell the story
    message = f"Enable succeeded: \n[stdout]\n{_tail(result.stdout)}\n[stderr]\n{_tail(result.stderr)}"
    return {"value": [{"code": "ProvisioningState/succeeded", "level": "Info",
                       "displayStatus": "Provisioning succeeded", "message": message}]}


def run_command(ctx: Context, group: str, name: str, body: dict[str, Any],
                fail_with: dict[str, str] | None) -> tuple[str, str]:
    """Start a script in the guest; the operation settles with its output."""
    vm = models.get_vm(ctx, group, name)
    models.refuse_if_deleting(vm, "runCommand")
    command = str(body.get("commandId") or "")
    vms.required(command, "commandId")
    os_type = vm.internal.get("os_type", "Linux")
    if COMMANDS.get(command) != os_type:
        raise InvalidParameter(
            f"The command '{command}' is not available for {os_type} virtual machines in the local Azure "
            f"(available: {', '.join(k for k, v in COMMANDS.items() if v == os_type)}).",
            target="commandId",
        )
    pending = vm.internal.get("pending") or {}
    if vm.internal.get("power") != "running" or pending.get("action") in ("powerOff", "deallocate", "restart"):
        raise OperationNotAllowed("The operation requires the VM to be running (or set to run).")
    lines = [str(x) for x in body.get("script") or []]
    script = _script(command, lines, list(body.get("parameters") or []))
    rt = runtime.get(ctx)
    op = lro.start(ctx, provider="compute", location=vm.body["location"], handler=HANDLER, args={"id": vm.id},
                   delay=None if fail_with is None else ctx.duration(models.UPDATE_SECONDS), fail_with=fail_with)
    if fail_with is None:
        worker = threading.Thread(target=_run_in_guest, args=(ctx, rt, vm.id, op, os_type, script),
                                  name=f"run-command-{vm.name}", daemon=True)
        worker.start()  # it settles the operation once this request's transaction has committed
    return op, vm.body["location"]


def _run_in_guest(ctx: Context, rt: GuestRuntime, vm_id: str, op: str, os_type: str, script: list[str]) -> None:
    try:
        result = rt.run_command(vm_id, script, RUN_COMMAND_TIMEOUT)
    except Exception as exc:
        lro.settle(ctx, op, error={
            "code": "VMAgentStatusCommunicationError",
            "message": f"VM '{vm_id.rsplit('/', 1)[-1]}' has not reported status for VM agent or extensions: {exc}",
        })
        return
    lro.settle(ctx, op, result=run_command_result(os_type, result))


def _finished(ctx: Context, args: dict[str, Any]) -> None:
    """The worker hands the result to ``lro.settle``; nothing else changes when a script ends."""


lro.on_complete(HANDLER)(_finished)


def fail_orphans(ctx: Context) -> None:
    """After a restart no worker is left to finish a running script: fail its operation, never leave it hanging."""
    with ctx.store.tx():
        for op in ctx.store.pending_operations():
            found = ctx.store.get_operation(op)
            if found is not None and found[2].get("handler") == HANDLER and found[1] is None:
                lro.settle(ctx, op, error={
                    "code": "VMAgentStatusCommunicationError",
                    "message": "The Run Command script was interrupted: the local Azure restarted while it ran.",
                })
