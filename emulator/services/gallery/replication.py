"""Regional replication of an image version: per region, a real copy of its disk plus Azure's pace.

Each target region holds ``{started, duration, replica_count, storage_account_type,
exclude_from_latest, source, disk, error, copy}`` in the version's internal state. ``duration`` is
Azure's time (a minute or two for the source region, several minutes per extra region, growing
with the disk size, varying by region) scaled by the time factor: a minimum, so demos feel like
Azure, and nothing at time factor 0. A disk that is a real file ("file", "vhd") is also copied
into each region's store (the source region too: Azure keeps a replica per region) on a
background worker; ``copy`` = ``{id, state, done, total, src, dst}`` tracks it and the region
completes when both the copy and the duration are done, its progress the lesser of the two.
Simulated disks (data, no file) follow the clock alone. A region doomed by a fault gives up 40%
of the way through (its partial copy removed). The version's operation is started without a
deadline while copies run; the last copy to finish gives it one (``_settle_when_copied``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.regions import display
from emulator.core.store import Resource
from emulator.services.gallery import copier, disks, faults

log = logging.getLogger("emulator.gallery.replication")

SOURCE_SECONDS = (45.0, 1.5)  # base, per GiB: copying the source into the gallery in its own region
REMOTE_SECONDS = (180.0, 6.0)  # base, per GiB: a cross-region copy
FAIL_FRACTION = 0.4  # a failing replication gives up 40% of the way through
VERSION = "Microsoft.Compute/galleries/images/versions"
UNFINISHED = ("queued", "copying")
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
        "disk": None,
        "error": error,
    }
    if disks.is_real_file(master):
        copy_id = uuid.uuid4().hex
        planned = disks.planned_replica(ctx, master, version_id, region, copy_id)
        rec["disk"] = None if error else planned
        rec["copy"] = {"id": copy_id, "state": "queued", "done": 0, "total": None,
                       "src": master["path"], "dst": planned["path"]}
        _submit(ctx, version_id, region, rec)
    elif not error:
        rec["disk"] = disks.replica(ctx, master, version_id, region)
    return rec


def fail(ctx: Context, rec: dict[str, Any], error: dict[str, str], now: float) -> None:
    """Fail a region now (its operation failed): its replica, finished or not, goes away."""
    if rec.get("disk") and disks.is_file_backed(rec["disk"]):
        disks.release(ctx, rec["disk"])
    copy = rec.get("copy")
    if copy is not None:
        disks.discard_copy(ctx, copy["dst"])
    progress = state(rec, now)[1]
    if copy is not None and copy["state"] in UNFINISHED:
        copy["state"] = "failed"
    rec.update({"disk": None, "error": error, "failed_at": now, "fail_progress": progress})


def forget(ctx: Context, version: Resource) -> None:
    """The version is going away: stop its copies, and let operations waiting on them end now."""
    waiting = False
    for rec in version.internal.get("regions", {}).values():
        copy = rec.get("copy")
        if copy is not None and copy["state"] in UNFINISHED:
            disks.discard_copy(ctx, copy["dst"])
            waiting = True
    if waiting:
        _reschedule_waiting(ctx, version, ctx.now())


def state(rec: dict[str, Any], now: float) -> tuple[str, int, str]:
    """(state, progress 0-100, details) of one region at ``now``."""
    ends = rec["started"] + rec["duration"]
    error = rec.get("error")
    if rec.get("failed_at") is not None:
        return "Failed", int(rec.get("fail_progress", 0)), error["message"] if error else ""
    timed = 1.0 if rec["duration"] <= 0 else (now - rec["started"]) / rec["duration"]
    copy = rec.get("copy")
    if copy is not None:
        copied = copy["state"] not in UNFINISHED
        if copied and now >= ends - _EPSILON:
            if copy["state"] == "failed":
                return "Failed", int(copy.get("fail_progress", 0)), error["message"] if error else ""
            return "Completed", 100, ""
        total = copy.get("total")
        fraction = 1.0 if copied else (copy["done"] / total if total else 0.0)
        fraction = min(fraction, timed * FAIL_FRACTION if error else timed)
        return "Replicating", max(0, min(99, int(fraction * 100))), ""
    if error and now >= ends - _EPSILON:
        return "Failed", int(FAIL_FRACTION * 100), error["message"]
    if now >= ends - _EPSILON:
        return "Completed", 100, ""
    fraction = timed * FAIL_FRACTION if error else timed
    return "Replicating", max(0, min(99, int(fraction * 100))), ""


def remaining(regions: dict[str, dict[str, Any]], now: float) -> float | None:
    """Seconds until every region has finished (completed or failed); None while copies still run."""
    live = [rec for rec in regions.values() if rec.get("failed_at") is None]
    if any((rec.get("copy") or {}).get("state") in UNFINISHED for rec in live):
        return None
    return max([rec["started"] + rec["duration"] - now for rec in live] + [0.0])


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


# the copies ------------------------------------------------------------------------------------
def _submit(ctx: Context, version_id: str, region: str, rec: dict[str, Any]) -> None:
    copy = rec["copy"]
    copy_id = copy["id"]

    def on_progress(done: int, total: int) -> None:
        def apply(r: dict[str, Any], _v: Resource) -> None:
            r["copy"].update(state="copying", done=done, total=total)
        _record(ctx, version_id, region, copy_id, apply)

    def on_end(outcome: str, done: int, total: int, message: str | None) -> None:
        def apply(r: dict[str, Any], v: Resource) -> None:
            now = ctx.now()
            c = r["copy"]
            if outcome == "done":
                c.update(state="done", done=total, total=total)
            else:
                injected = r.get("error") is not None
                progress = int(FAIL_FRACTION * 100) if injected else int(100 * done / total) if total else 0
                c.update(state="failed", done=done, total=total, fail_progress=progress)
                if not injected:  # the copy itself failed: the region fails now
                    r["error"] = {"code": "ReplicationFailed",
                                  "message": f"Replication failed in this region: could not copy the disk ({message})."}
                    r["duration"] = max(0.0, min(r["duration"], now - r["started"]))
                r["disk"] = None
            _settle_when_copied(ctx, v, now)
        if not _record(ctx, version_id, region, copy_id, apply) and outcome == "done":
            disks.discard_copy(ctx, copy["dst"])  # nobody wants it any more (version or region gone)

    fail_at = FAIL_FRACTION if rec.get("error") else None
    copier.of(ctx).submit(copier.Job(region=region, src=Path(copy["src"]), dst=Path(copy["dst"]),
                                     on_progress=on_progress, on_end=on_end, fail_at=fail_at))


def _record(ctx: Context, version_id: str, region: str, copy_id: str, apply: Any) -> bool:
    """Apply a copy's news to its region, if the version still has that region with that copy."""
    try:
        with ctx.store.tx():
            version = ctx.store.get(version_id)
            if version is None:
                return False
            rec = version.internal.get("regions", {}).get(region)
            if rec is None or (rec.get("copy") or {}).get("id") != copy_id or rec.get("failed_at") is not None:
                return False
            apply(rec, version)
            ctx.store.put(version)
            return True
    except Exception:  # the copier's thread must survive whatever the store does
        log.exception("could not record the copy of %s to %s", version_id, region)
        return False


def _settle_when_copied(ctx: Context, version: Resource, now: float) -> None:
    """Every copy done: the version's operations waiting on them end once Azure's time is up too."""
    if remaining(version.internal["regions"], now) is not None:
        _reschedule_waiting(ctx, version, now)


def _reschedule_waiting(ctx: Context, version: Resource, now: float) -> None:
    left = remaining(version.internal["regions"], now)
    ready = now + (left or 0.0)
    for op in version.internal.get("pending_ops", []):
        found = ctx.store.get_operation(op)
        if found is not None and found[0] == "InProgress" and found[1] is None:
            lro.reschedule(ctx, op, ready)


def resume(ctx: Context) -> int:
    """At startup: copies the last run left unfinished start again from scratch (partial files removed)."""
    started = 0
    with ctx.store.tx():
        for version in ctx.store.all():
            if version.type.lower() != VERSION.lower():
                continue
            changed = False
            for region, rec in version.internal.get("regions", {}).items():
                copy = rec.get("copy")
                if copy is None or copy["state"] not in UNFINISHED or rec.get("failed_at") is not None:
                    continue
                disks.discard_copy(ctx, copy["dst"])
                copy.update(state="queued", done=0, total=None)
                changed = True
                if Path(copy["src"]).is_file():
                    _submit(ctx, version.id, region, rec)
                    started += 1
                else:
                    copy.update(state="failed", fail_progress=0)
                    rec["error"] = {"code": "ReplicationFailed",
                                    "message": "Replication failed in this region: the source disk is gone."}
                    rec["disk"] = None
                    rec["duration"] = 0.0
            if changed:
                ctx.store.put(version)
                _settle_when_copied(ctx, version, ctx.now())
    return started


class _Lifecycle:
    """Restart unfinished copies when the emulator starts; stop the copier when it stops."""

    async def startup(self, ctx: Context) -> None:
        n = resume(ctx)
        if n:
            log.info("restarted %d unfinished replica copies", n)

    async def shutdown(self, ctx: Context) -> None:
        found = ctx.extras.get(copier.EXTRA)
        if isinstance(found, copier.Copier):
            found.stop()


lifecycle = _Lifecycle()
