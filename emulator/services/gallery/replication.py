"""Regional replication of an image version, as a clock-driven state machine per region.

Each target region holds ``{started, duration, replica_count, storage_account_type,
exclude_from_latest, source, disk, error}`` in the version's internal state. Its state follows
from the emulator's clock alone (no background work): Replicating until ``started + duration``,
then Completed, or Failed when the replication was doomed by a fault. Durations are Azure's
(a minute or two for the source region, several minutes per extra region, growing with the disk
size, varying by region) scaled by the time factor, so replication is instant in tests at 0 and
watchable in demos.
"""

from __future__ import annotations

import hashlib
from typing import Any

from emulator.core.context import Context
from emulator.core.regions import display
from emulator.services.gallery import disks, faults

SOURCE_SECONDS = (45.0, 1.5)  # base, per GiB: copying the source into the gallery in its own region
REMOTE_SECONDS = (180.0, 6.0)  # base, per GiB: a cross-region copy
FAIL_FRACTION = 0.4  # a failing replication gives up 40% of the way through
_EPSILON = 1e-6


def azure_seconds(version_id: str, region: str, size_gb: int, *, source: bool) -> float:
    """How long Azure takes to replicate a version of ``size_gb`` to ``region``; the source region first."""
    base, per_gb = SOURCE_SECONDS if source else REMOTE_SECONDS
    seconds = base + per_gb * max(size_gb, 1)
    if source:
        return seconds
    h = hashlib.sha1(f"{version_id.lower()}|{region}".encode(), usedforsecurity=False).digest()
    return seconds * (0.8 + 0.5 * int.from_bytes(h[:2], "big") / 65535)  # 0.8x-1.3x: regions differ


def start(ctx: Context, version_id: str, region: str, *, source: bool, size_gb: int, replica_count: int,
          storage_account_type: str, exclude_from_latest: bool, master: dict[str, Any], now: float) -> dict[str, Any]:
    """Begin replicating to ``region``: a fault rule for the region dooms it, else its replica is placed."""
    duration = ctx.duration(azure_seconds(version_id, region, size_gb, source=source))
    error = faults.take(ctx, region)
    rec: dict[str, Any] = {
        "started": now,
        "duration": duration * FAIL_FRACTION if error else duration,
        "replica_count": replica_count,
        "storage_account_type": storage_account_type,
        "exclude_from_latest": exclude_from_latest,
        "source": source,
        "disk": None if error else disks.replica(ctx, master, version_id, region),
        "error": error,
    }
    return rec


def fail(ctx: Context, rec: dict[str, Any], error: dict[str, str], now: float) -> None:
    """Fail a region now (its operation failed): its replica goes away."""
    if rec.get("disk") and disks.is_file_backed(rec["disk"]):
        disks.release(ctx, rec["disk"])
    progress = state(rec, now)[1]
    rec.update({"disk": None, "error": error, "failed_at": now, "fail_progress": progress})


def state(rec: dict[str, Any], now: float) -> tuple[str, int, str]:
    """(state, progress 0-100, details) of one region at ``now``."""
    ends = rec["started"] + rec["duration"]
    error = rec.get("error")
    if rec.get("failed_at") is not None:
        return "Failed", int(rec.get("fail_progress", 0)), error["message"] if error else ""
    if error and now >= ends - _EPSILON:
        return "Failed", int(FAIL_FRACTION * 100), error["message"]
    if now >= ends - _EPSILON:
        return "Completed", 100, ""
    fraction = (now - rec["started"]) / rec["duration"]
    if error:
        fraction *= FAIL_FRACTION
    return "Replicating", max(0, min(99, int(fraction * 100))), ""


def remaining(regions: dict[str, dict[str, Any]], now: float) -> float:
    """Seconds until every region has finished (completed or failed)."""
    ends = [rec["started"] + rec["duration"] for rec in regions.values() if rec.get("failed_at") is None]
    return max([e - now for e in ends] + [0.0])


def status(order: list[str], regions: dict[str, dict[str, Any]], now: float) -> dict[str, Any]:
    """The ``replicationStatus`` ARM shows with ``$expand=ReplicationStatus``."""
    summary = []
    for region in order:
        rec = regions.get(region)
        if rec is None:
            continue
        st, progress, details = state(rec, now)
        summary.append({"region": display(region), "state": st, "details": details, "progress": progress})
    states = {s["state"] for s in summary}
    if not summary:
        aggregated = "Unknown"
    elif "Failed" in states:
        aggregated = "Failed"
    elif states == {"Completed"}:
        aggregated = "Completed"
    else:
        aggregated = "InProgress"
    return {"aggregatedState": aggregated, "summary": summary}
