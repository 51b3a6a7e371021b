"""Replication faults: make the next N replications to a region fail, as a regional outage would.

Rules are kept in the store's settings, so they survive a restart and ``/_emulator/reset`` clears them.
"""

from __future__ import annotations

import uuid
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.regions import REGIONS

SETTING = "gallery.replication_faults"
DEFAULT_CODE = "ReplicationFailed"
DEFAULT_MESSAGE = "Replication failed in this region due to 'Injected replication fault.'"


def rules(ctx: Context) -> list[dict[str, Any]]:
    value = ctx.store.get_setting(SETTING, [])
    return list(value) if isinstance(value, list) else []


def add(ctx: Context, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ArmError("A replication fault is an object: {\"region\", \"code\"?, \"message\"?, \"count\"?}.")
    region = body.get("region")
    key = region.replace(" ", "").lower() if isinstance(region, str) else ""
    if key != "*" and key not in REGIONS:
        raise ArmError(f"Field 'region' must be a known region (or '*'), got {region!r}.", target="region")
    count = body.get("count", 1)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ArmError("Field 'count' must be a positive integer (or null for every replication).", target="count")
    rule = {
        "id": uuid.uuid4().hex[:12],
        "region": key,
        "code": str(body.get("code") or DEFAULT_CODE),
        "message": str(body.get("message") or DEFAULT_MESSAGE),
        "remaining": count,
    }
    ctx.store.set_setting(SETTING, [*rules(ctx), rule])
    return rule


def clear(ctx: Context) -> None:
    ctx.store.set_setting(SETTING, [])


def take(ctx: Context, region: str) -> dict[str, str] | None:
    """The error for a replication to ``region`` starting now, consuming one use of the rule; else None."""
    current = rules(ctx)
    for rule in current:
        if rule["region"] not in ("*", region):
            continue
        if rule["remaining"] is not None:
            rule["remaining"] -= 1
            if rule["remaining"] <= 0:
                current.remove(rule)
        ctx.store.set_setting(SETTING, current)
        return {"code": rule["code"], "message": rule["message"]}
    return None
