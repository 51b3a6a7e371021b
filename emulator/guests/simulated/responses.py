"""Handlers of ``/_emulator/guests``: see the simulated guests, their command logs, and inject faults."""

from __future__ import annotations

from typing import Any

from emulator.core.errors import ArmError
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.guests.simulated.runtime import Guest, GuestNotRunning, SimulatedRuntime
from emulator.guests.simulated.session import Fault


def _runtime(req: ArmRequest) -> SimulatedRuntime:
    rt = req.ctx.extras.get("guests")
    if not isinstance(rt, SimulatedRuntime):  # QEMU guests selected: the simulated one sits behind a router
        rt = getattr(rt, "simulated", None)
    if not isinstance(rt, SimulatedRuntime):
        raise ArmError("The simulated guest runtime is not running in this emulator.", code="GuestRuntimeUnavailable",
                       status=503)
    return rt


def _guest(req: ArmRequest) -> Guest:
    ref = req.params["guest"]
    found = _runtime(req).find(ref)
    if not found:
        raise ArmError(f"No simulated guest matches '{ref}' (a VM id, VM name, host name or address).",
                       code="NotFound", status=404)
    if len(found) > 1:
        raise ArmError(f"'{ref}' matches {len(found)} guests: " + ", ".join(g.vm_id for g in found)
                       + ". Use the VM id.", code="Ambiguous", status=409)
    return found[0]


def list_guests(req: ArmRequest) -> ArmResponse:
    guests = [g.summary() for g in _runtime(req).list()]
    return ArmResponse(200, {"count": len(guests), "value": guests})


def get_guest(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, _guest(req).detail())


def list_commands(req: ArmRequest) -> ArmResponse:
    since = int(req.query.get("since", "0") or 0)
    return ArmResponse(200, {"value": _guest(req).command_log(since)})


def _int(body: dict[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArmError(f"Field '{name}' must be an integer.", target=name)
    return value


def add_fault(req: ArmRequest) -> ArmResponse:
    body = req.json()
    match = body.get("match")
    if not isinstance(match, str) or not match:
        raise ArmError("Field 'match' (a glob matched against each command) is required.", target="match")
    unknown = set(body) - {"match", "exit_code", "stderr", "hang", "count"}
    if unknown:
        raise ArmError(f"Unknown fields: {', '.join(sorted(unknown))}; allowed: match, exit_code, stderr, hang, count.")
    count = _int(body, "count", None)
    if count is not None and count < 1:
        raise ArmError("Field 'count' must be at least 1 (omit it for a fault that fires until removed).",
                       target="count")
    fault = Fault(match=match, exit_code=_int(body, "exit_code", 1) or 0, stderr=str(body.get("stderr", "")),
                  hang=bool(body.get("hang", False)), count=count)
    g = _guest(req)
    _runtime(req).add_fault(g, fault)
    return ArmResponse(201, fault.to_json())


def list_faults(req: ArmRequest) -> ArmResponse:
    g = _guest(req)
    return ArmResponse(200, {"value": [f.to_json() for f in g.faults]})


def clear_faults(req: ArmRequest) -> ArmResponse:
    _runtime(req).clear_faults(_guest(req))
    return ArmResponse(204)


def delete_fault(req: ArmRequest) -> ArmResponse:
    if not _runtime(req).clear_faults(_guest(req), req.params["fault"]):
        raise ArmError(f"No fault '{req.params['fault']}' on this guest.", code="NotFound", status=404)
    return ArmResponse(204)


def run(req: ArmRequest) -> ArmResponse:
    """Run a script on the guest's console, outside SSH/WinRM (as root / SYSTEM unless ``user`` is given)."""
    body = req.json()
    script = body.get("script")
    if not isinstance(script, str):
        raise ArmError("Field 'script' (the shell or PowerShell text to run) is required.", target="script")
    timeout = float(body.get("timeout", 60))
    g = _guest(req)
    try:
        result = g.run_script(script, user=body.get("user"), channel="console", timeout=timeout)
    except GuestNotRunning as exc:
        raise ArmError(str(exc), code="GuestNotRunning", status=409) from exc
    except TimeoutError as exc:
        raise ArmError(str(exc), code="GuestCommandTimedOut", status=408) from exc
    return ArmResponse(200, {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr})


def get_archive(req: ArmRequest) -> ArmResponse:
    rt = _runtime(req)
    return ArmResponse(200, {"serial": rt.archive_serial(), "override": rt.archive_override})


def put_archive(req: ArmRequest) -> ArmResponse:
    """Move the simulated package archives to another month (``serial``: months since June 2023; null = now)."""
    body = req.json()
    serial = _int(body, "serial", None)
    if serial is not None and serial < 0:
        raise ArmError("Field 'serial' must be >= 0 or null.", target="serial")
    _runtime(req).set_archive_serial(serial)
    return get_archive(req)
