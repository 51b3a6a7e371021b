"""The emulator's own operations API (``/_emulator/...``): for tests, demos and curious users."""

from __future__ import annotations

from typing import Any

from emulator.core.errors import ArmError
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.ops.faults import FaultRule

# copy_rate_mb_s: cap (MiB/s, 0 = none) on the gallery's replica copies, so tests can watch a copy progress;
# sysprep_seconds: wall-clock seconds a simulated sysprep /generalize takes (0 = 90 s x time factor), so tests
# can watch one in progress while everything else is instant
SETTINGS = {"time_factor": float, "retry_after": int, "copy_rate_mb_s": float, "sysprep_seconds": float}


def _dispatcher(req: ArmRequest) -> Any:
    return req.ctx.extras["dispatcher"]


def health(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, {"status": "ok", "subscriptionId": req.ctx.subscription, "tenantId": req.ctx.tenant,
                             "linuxGuestRuntime": linux_guest_runtime(req.ctx.extras.get("guests"))})


def linux_guest_runtime(runtime: Any) -> str | None:
    """The runtime this emulator boots Marketplace Linux VMs in, read from the runtime it actually runs
    (tests label themselves with it): QEMU when the guest router has it, else the runtime's own name."""
    if runtime is None:
        return None
    runtimes = getattr(runtime, "runtimes", None)  # a GuestRouter: QEMU takes the Linux file disks
    if isinstance(runtimes, dict):
        return "qemu" if "qemu" in runtimes else str(runtime.default)
    return str(getattr(runtime, "name", type(runtime).__name__))


def inventory(req: ArmRequest) -> ArmResponse:
    """Every resource, optionally only those carrying ``tag=name`` or ``tag=name=value``."""
    wanted = req.query.get("tag")
    name, _, value = (wanted or "").partition("=")
    rtype = req.query.get("type", "").lower()
    items = []
    for resource in req.ctx.store.all():
        tags = resource.body.get("tags") or {}
        if wanted and (name not in tags or (value and tags[name] != value)):
            continue
        if rtype and resource.type.lower() != rtype:
            continue
        items.append({
            "id": resource.id,
            "type": resource.body.get("type", resource.type),
            "location": resource.body.get("location"),
            "tags": tags,
            "provisioningState": (resource.body.get("properties") or {}).get("provisioningState"),
        })
    return ArmResponse(200, {"count": len(items), "value": items})


def requests(req: ArmRequest) -> ArmResponse:
    since = int(req.query.get("since", "0") or 0)
    return ArmResponse(200, _dispatcher(req).log.snapshot(since))


def clear_requests(req: ArmRequest) -> ArmResponse:
    _dispatcher(req).log.clear()
    return ArmResponse(204)


def reset(req: ArmRequest) -> ArmResponse:
    """Forget every resource, operation, fault and request; keep the signing key (tokens stay valid)."""
    from emulator.core import lifecycle

    for resource in sorted(req.ctx.store.all(), key=lambda r: r.id.count("/"), reverse=True):
        lifecycle.remove(req.ctx, resource)
    req.ctx.store.reset(keep_settings=("signing_key",))
    d = _dispatcher(req)
    d.faults.clear()
    d.log.clear()
    d.throttle.configure(False)
    return ArmResponse(204)


def list_faults(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, {"value": _dispatcher(req).faults.list()})


def add_fault(req: ArmRequest) -> ArmResponse:
    rule = _dispatcher(req).faults.add(FaultRule.from_json(req.json()))
    return ArmResponse(201, {"id": rule.id, "match": rule.match, "kind": rule.kind})


def clear_faults(req: ArmRequest) -> ArmResponse:
    _dispatcher(req).faults.clear()
    return ArmResponse(204)


def delete_fault(req: ArmRequest) -> ArmResponse:
    if not _dispatcher(req).faults.remove(req.params["fault"]):
        raise ArmError(f"No fault rule '{req.params['fault']}'.", code="NotFound", status=404)
    return ArmResponse(204)


def get_throttling(req: ArmRequest) -> ArmResponse:
    t = _dispatcher(req).throttle
    return ArmResponse(200, {"enforce": t.enforce, "scale": t.scale})


def put_throttling(req: ArmRequest) -> ArmResponse:
    body = req.json()
    enforce = body.get("enforce")
    if not isinstance(enforce, bool):
        raise ArmError("Field 'enforce' must be true or false.", target="enforce")
    scale = float(body.get("scale", 1.0))
    if not 0 < scale <= 1:
        raise ArmError("Field 'scale' must be in (0, 1]: the fraction of Azure's bucket sizes.", target="scale")
    _dispatcher(req).throttle.configure(enforce, scale)
    return get_throttling(req)


def get_settings(req: ArmRequest) -> ArmResponse:
    store = req.ctx.store
    return ArmResponse(200, {
        "time_factor": req.ctx.current_time_factor(),
        "retry_after": store.get_setting("retry_after", 1),
        "copy_rate_mb_s": store.get_setting("copy_rate_mb_s", 0),
        "sysprep_seconds": store.get_setting("sysprep_seconds", 0),
    })


def patch_settings(req: ArmRequest) -> ArmResponse:
    body = req.json()
    for key, value in body.items():
        if key not in SETTINGS:
            raise ArmError(f"Unknown setting '{key}'; settable: {', '.join(SETTINGS)}.", target=key)
        if not isinstance(value, (int, float)) or value < 0:
            raise ArmError(f"Setting '{key}' must be a number >= 0.", target=key)
        if key == "retry_after" and (value != int(value) or value < 1):
            # the SDKs deserialize Retry-After as an int, and 0 makes azure-core fall back to 30 s
            raise ArmError("Setting 'retry_after' must be a whole number of seconds >= 1.", target=key)
        req.ctx.store.set_setting(key, SETTINGS[key](value))
    return get_settings(req)
