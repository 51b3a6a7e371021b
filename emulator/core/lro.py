"""ARM's long-running-operation protocol: operation-status resources, polling URLs, completion.

An operation is InProgress until it is settled: either its ``ready_at`` time passes (timed
work, scaled by the time factor) or the code doing the work completes it explicitly. Settling
runs the completion handler named when the operation was started; a handler that raises an
ArmError fails the operation with that error, as ARM does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError

Handler = Callable[[Context, dict[str, Any]], Any]
_HANDLERS: dict[str, Handler] = {}
_FAILURE_HANDLERS: dict[str, Handler] = {}

TERMINAL = ("Succeeded", "Failed", "Canceled")

# Where each resource provider serves operation status (ARM-EMULATOR-SPEC.md section 2).
STATUS_PATHS = {
    "compute": "providers/Microsoft.Compute/locations/{loc}/operations/{op}",
    "gallery": "providers/Microsoft.Compute/locations/{loc}/capsOperations/{op}",
    "network": "providers/Microsoft.Network/locations/{loc}/operations/{op}",
    "resources": "operationresults/{op}",
}


def on_complete(name: str, on_failure: Handler | None = None) -> Callable[[Handler], Handler]:
    """Register the handler that finishes operations started with ``handler=name``."""

    def wrap(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        if on_failure is not None:
            _FAILURE_HANDLERS[name] = on_failure
        return fn

    return wrap


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def start(
    ctx: Context,
    *,
    provider: str,
    location: str,
    handler: str,
    args: dict[str, Any],
    delay: float | None = 0.0,
    fail_with: dict[str, str] | None = None,
) -> str:
    """Record a new operation. ``delay`` None means "completed by the worker, not by the clock"."""
    op_id = str(uuid.uuid4())
    now = ctx.now()
    data = {
        "provider": provider,
        "location": location,
        "handler": handler,
        "args": args,
        "startTime": now,
        "error": None,
        "result": None,
        "fail_with": fail_with,
    }
    ready = None if delay is None else now + delay
    ctx.store.put_operation(op_id, "InProgress", ready, data)
    return op_id


def start_for(req: Any, *, provider: str, location: str, handler: str, args: dict[str, Any], delay: float | None = 0.0) -> str:
    """Start an operation for a request, carrying any LRO failure injected for that call."""
    return start(req.ctx, provider=provider, location=location, handler=handler, args=args, delay=delay,
                 fail_with=req.lro_failure)


def status_path(ctx: Context, op_id: str, provider: str, location: str) -> str:
    tail = STATUS_PATHS[provider].format(loc=location, op=op_id)
    return f"/subscriptions/{ctx.subscription}/{tail}"


def settle(ctx: Context, op_id: str, *, error: dict[str, str] | None = None, result: Any = None) -> None:
    """Finish an operation now: run its handler (or its failure handler when it fails)."""
    with ctx.store.tx():
        found = ctx.store.get_operation(op_id)
        if not found or found[0] != "InProgress":
            return
        _status, _ready, data = found
        error = error or data.get("fail_with")
        status = "Succeeded"
        if error is None:
            try:
                out = _HANDLERS[data["handler"]](ctx, data["args"])
                if out is not None:
                    data["result"] = out
            except ArmError as exc:
                error = {"code": exc.code, "message": exc.message}
        if error is not None:
            status = "Failed"
            data["error"] = error
            failure = _FAILURE_HANDLERS.get(data["handler"])
            if failure is not None:
                failure(ctx, {**data["args"], "error": error})
        if result is not None:
            data["result"] = result
        data["endTime"] = ctx.now()
        ctx.store.put_operation(op_id, status, None, data)


def settle_due(ctx: Context) -> None:
    """Settle every timed operation whose time has come. Called before each request is served."""
    for op_id in ctx.store.due_operations(ctx.now()):
        settle(ctx, op_id)


def reschedule(ctx: Context, op_id: str, ready_at: float | None) -> None:
    found = ctx.store.get_operation(op_id)
    if found and found[0] == "InProgress":
        ctx.store.put_operation(op_id, "InProgress", ready_at, found[2])


def status_body(ctx: Context, op_id: str) -> tuple[str, dict[str, Any]] | None:
    found = ctx.store.get_operation(op_id)
    if not found:
        return None
    status, _ready, data = found
    body: dict[str, Any] = {"name": op_id, "status": status, "startTime": iso(data["startTime"])}
    if status in TERMINAL and data.get("endTime"):
        body["endTime"] = iso(data["endTime"])
    if data.get("error"):
        body["error"] = data["error"]
    if status == "Succeeded" and data.get("result") is not None and data["provider"] == "compute":
        body["properties"] = {"output": data["result"]}
    return status, body


def result(ctx: Context, op_id: str) -> tuple[str, Any] | None:
    found = ctx.store.get_operation(op_id)
    if not found:
        return None
    return found[0], found[2].get("result")
