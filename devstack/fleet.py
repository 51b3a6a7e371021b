"""Fleet commands through Airflow's REST API: create the factory's pools, start a fleet rebuild, show what waits.

``pools`` creates or updates the pools include/fleet.yaml sizes (POST, else PATCH ``/api/v2/pools``),
and can write them as a file for ``airflow pools import`` on a deployment this machine does not run.
The view reads ``/api/v2/pools`` (running, queued, scheduled and deferred slots of every factory
pool), each golden-image DAG's latest run, and the task instances that wait: scheduled or queued
for a pool slot, or up for reschedule (refused by the vCPU quota, trying again later).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:  # the factory's pure modules (fleet limits, definitions)
    sys.path.insert(0, str(ROOT / "plugins"))

from image_factory import fleet as limits  # noqa: E402

WAITING = ("scheduled", "queued", "up_for_reschedule")
DAG_PREFIX = "golden_"
FLEET_DAG_ID = "fleet_rebuild"


def include_dir(env: dict[str, str] | None = None) -> Path:
    return Path((env or os.environ).get("IMAGE_FACTORY_INCLUDE") or ROOT / "include")


def factory_pools(include: Path) -> list[limits.PoolSpec]:
    """The pools the DAGs of ``include`` use (none without include/fleet.yaml)."""
    from image_factory.definitions import DefinitionError, load_file

    config = limits.load(include)
    if config is None:
        return []
    definitions = []
    for path in sorted((include / "images").glob("*.yaml")):
        try:
            definitions.append(load_file(path, label=f"images/{path.name}"))
        except DefinitionError:
            continue
    return limits.pools(config, definitions)


def sync_pools(stack: Any, token: str, specs: list[limits.PoolSpec]) -> list[dict[str, Any]]:
    """Create each pool, or set its slots, description and include_deferred: ``[{name, slots, action}]``."""
    done = []
    for spec in specs:
        body = {"name": spec.name, "slots": spec.slots, "description": spec.description,
                "include_deferred": spec.include_deferred}
        resp = stack.api("POST", "pools", token, json=body)
        action = "created"
        if resp.status_code == 409:
            current = stack.api("GET", f"pools/{spec.name}", token).json()
            if (current["slots"], current.get("description"), current["include_deferred"]) == (
                    spec.slots, spec.description, spec.include_deferred):
                action = "unchanged"
            else:
                resp = stack.api("PATCH", f"pools/{spec.name}", token,
                                 json={k: v for k, v in body.items() if k != "name"})
                action = "updated"
        if action != "unchanged":
            resp.raise_for_status()
        done.append({"name": spec.name, "slots": spec.slots, "action": action})
    return done


def pool_file(specs: list[limits.PoolSpec]) -> dict[str, Any]:
    """The pools as ``airflow pools import`` reads them."""
    return {s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in specs}


def golden_dags(stack: Any, token: str) -> list[dict[str, Any]]:
    """The golden-image DAGs (``dag_id_pattern`` is a LIKE pattern, where ``_`` matches any character)."""
    found = stack.api("GET", "dags", token, params={"dag_id_pattern": DAG_PREFIX, "limit": 1000}).json()["dags"]
    return sorted((d for d in found if d["dag_id"].startswith(DAG_PREFIX)), key=lambda d: d["dag_id"])


# what is waiting ------------------------------------------------------------------------------------
def status(stack: Any, token: str, include: Path) -> dict[str, Any]:
    """Factory pools with their slots, each image DAG's latest run, and every task instance waiting."""
    wanted = {s.name: s for s in factory_pools(include)}
    pools = [p for p in stack.api("GET", "pools", token, params={"limit": 1000}).json()["pools"]
             if p["name"] in wanted or p["name"].startswith((limits.VCPU_POOL_PREFIX, limits.BUILDS_POOL_PREFIX))]
    missing = sorted(set(wanted) - {p["name"] for p in pools})
    images = []
    for dag in golden_dags(stack, token):
        runs = stack.api("GET", f"dags/{dag['dag_id']}/dagRuns", token,
                         params={"order_by": "-run_after", "limit": 1}).json()["dag_runs"]
        images.append({"dag_id": dag["dag_id"], "paused": dag["is_paused"], "run": runs[0] if runs else None})
    waiting = []
    for state in WAITING:
        found = stack.api("GET", "dags/~/dagRuns/~/taskInstances", token,
                          params={"state": state, "limit": 1000}).json()["task_instances"]
        waiting += [t for t in found if t["dag_id"].startswith(DAG_PREFIX) or t["dag_id"] == FLEET_DAG_ID]
    return {"pools": pools, "missing_pools": missing, "images": images, "waiting": waiting}


def render(found: dict[str, Any]) -> str:
    lines = ["Pools (slots: running / deferred / queued / scheduled of total, open):"]
    for p in sorted(found["pools"], key=lambda p: p["name"]):
        lines.append(f"  {p['name']:<40} {p['running_slots']:>3} / {p['deferred_slots']:>3} / {p['queued_slots']:>3} / "
                     f"{p['scheduled_slots']:>3} of {p['slots']:>3}, open {p['open_slots']}")
    for name in found["missing_pools"]:
        lines.append(f"  {name:<40} MISSING: tasks in it never run (./factory pools creates it)")
    lines.append("Image DAGs (latest run):")
    for image in found["images"]:
        run = image["run"] or {}
        paused = " (paused)" if image["paused"] else ""
        lines.append(f"  {image['dag_id']:<40} {run.get('state', 'no run'):<8} {run.get('dag_run_id', '')}{paused}")
    lines.append(f"Waiting task instances: {len(found['waiting']) or 'none'}")
    for t in sorted(found["waiting"], key=lambda t: (t["pool"], t["state"], t["dag_id"])):
        index = f"[{t['map_index']}]" if t["map_index"] >= 0 else ""
        why = "quota: trying again later" if t["state"] == "up_for_reschedule" else f"{t['state']} for {t['pool']}"
        lines.append(f"  {t['dag_id']}.{t['task_id']}{index}: {why} ({t['pool_slots']} slots)")
    return "\n".join(lines)


def rebuild(stack: Any, token: str, reason: str, images: list[str] | None = None) -> str:
    """Unpause the image DAGs taking part and the fleet DAG, and start a fleet rebuild: its run id."""
    for dag in golden_dags(stack, token):
        if not images or dag["dag_id"].removeprefix(DAG_PREFIX) in images:
            stack.api("PATCH", f"dags/{dag['dag_id']}", token, json={"is_paused": False}).raise_for_status()
    conf: dict[str, Any] = {"reason": reason, **({"images": images} if images else {})}
    return str(stack.trigger(FLEET_DAG_ID, conf, token))
