"""A fleet rebuild under real Airflow processes: its wall time next to the builds one by one, and the
scheduler's overhead per task while pools and the vCPU quota queue the work.

Target (BENCHMARKS.md): fleet rebuild of 20+ definitions on simulated guests, **scheduler overhead
<= 1 s per task**, quotas held by pools. Everything is measured in one run, on one local Azure and
one Airflow (``tests/e2e/fleet.py``: generated definitions in two regions, each region's vCPU quota
set to its pool), in this order:

1. ``--solo`` images are built one at a time, nothing else running: each build's wall time;
2. the fleet DAG rebuilds every image at once; its wall time is set against the sum of the
   individual builds (the solo mean times the fleet's size: the images differ only in name, region
   and VM size) and against the bound the builds pools set (per region, its builds' solo time over
   its builds pool, the longest region);
3. from the REST API, every task instance of the fleet's image runs and their plans (resource groups):
   the scheduler overhead of each
   (``DEFINITIONS``) and the image runs at once per region; from ``/api/v2/pools``, sampled every
   second, the most slots each pool had occupied; from the local Azure, the vCPU high-water mark
   and the VM writes it refused for the quota.

    python -m bench.fleet_run [--images 20] [--solo 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.output import publish

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "plugins"):  # the repository and the factory's modules, as pytest has them
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

TARGET_OVERHEAD_S = 1.0
DEFINITIONS = {
    "ready": "when a task instance could start: the latest end of its upstream task instances in the same run "
    "(every map index of a mapped upstream), or the run's start for the first task",
    "scheduler overhead": "ready -> the task instance's start (its first start: a deferred task keeps it), minus "
    "the time it waited for a factory pool: its scheduled -> queued; for a task that deferred (its "
    "scheduled/queued times are its resumption's), ready -> the pool's last release before it started "
    "(another task instance of the pool ended, or resumed from a deferral and so gave its slots up "
    "until queued again). Task instances a quota refusal rescheduled are left out (the local Azure "
    "refused a VM write in their run's resource group: the build VM's -> provision_vm, a smoke VM's -> "
    "smoke_test): their start is after the quota wait; so are skipped ones",
    "split": "for task instances that neither deferred nor were rescheduled: ready -> scheduled (the scheduler "
    "saw the upstream end), scheduled -> queued (pools, executor slots), queued -> start (worker start-up)",
    "sum of the individual builds": "mean wall time of the solo builds (run start -> end) x the number of images",
    "builds-pool bound": "per region, its images x the solo mean / its builds pool; the longest region",
}


def plan_for(images: int) -> dict[str, Any]:
    from tests.e2e.fleet import RegionPlan

    north = images // 3
    return {"westeurope": RegionPlan(images=images - north, vcpus=8, builds=4),
            "northeurope": RegionPlan(images=north, vcpus=4, builds=2)}


# ------------------------------------------------------------------------------------------------
# collecting
# ------------------------------------------------------------------------------------------------
def collect(images: int, solo: int, time_factor: float, parallelism: int, work: Path, timeout: float) -> dict[str, Any]:
    from devstack import fleet as fleet_cli
    from tests.e2e.fleet import PoolWatch, running_fleet, wait_for_run

    plan = plan_for(images)
    raw: dict[str, Any] = {"images": images, "time_factor": time_factor, "parallelism": parallelism,
                           "plan": {r: vars(p) for r, p in plan.items()}, "load": []}
    with running_fleet(work, plan, time_factor=time_factor, parallelism=parallelism) as f:
        raw["pids"] = {"emulator": f.emu.proc.pid if f.emu.proc else None,
                       **{name: p.pid for name, p in f.stack.procs.items()}}
        raw["regions"] = f.images
        picked = _solo_images(f.images, solo)
        raw["solo"] = []
        for name in picked:  # one at a time, nothing else running
            dag_id = f"golden_{name}"
            run_id = f.stack.trigger(dag_id, {"reason": "bench.fleet_run: solo"}, f.renew_token())
            run = wait_for_run(f.stack, dag_id, run_id, f.token, timeout)
            raw["solo"].append({"image": name, "region": f.images[name], "run": run})
            print(f"  solo {name}: {run['state']} in {_wall(run):.1f} s", flush=True)
        with PoolWatch(f.stack, f.renew_token(), f.emu) as watch:
            fleet_run_id = fleet_cli.rebuild(f.stack, f.token, "bench.fleet_run")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                raw["load"].append(os.getloadavg()[0])
                run = f.stack.api("GET", f"dags/fleet_rebuild/dagRuns/{fleet_run_id}", f.token).json()
                if run["state"] in ("success", "failed"):
                    break
                time.sleep(5)
            else:
                raise TimeoutError(f"the fleet rebuild did not finish within {timeout:.0f} s")
        raw["fleet_run"] = run
        print(f"  fleet of {images}: {run['state']} in {_wall(run):.1f} s", flush=True)
        raw["pools"] = {"most": watch.most, "slots": watch.slots, "starved_samples": watch.starved,
                        "samples": watch.samples}
        raw["quota_refusals"], raw["refused_paths"] = watch.refusals, watch.refused
        raw["quotas"] = f.emu.ops("GET", "quotas")["value"]
        token = f.renew_token()
        raw["fleet_runs"], raw["task_instances"], raw["groups"] = {}, {}, {}
        for dag_id in f.dag_ids:
            after = [r for r in _runs(f.stack, dag_id, token)
                     if str(r["conf"].get("reason", "")).startswith("bench.fleet_run (")]
            raw["fleet_runs"][dag_id] = after[-1] if after else None
            if after:
                raw["task_instances"][dag_id] = f.stack.task_instances(dag_id, after[-1]["dag_run_id"], token)
                raw["groups"][dag_id] = f.stack.xcom(dag_id, after[-1]["dag_run_id"], "plan", token)["resource_group"]
        raw["upstream"] = _upstream(f.stack, f.dag_ids[0], token)  # every image DAG has the same shape
    return raw


def _solo_images(images: dict[str, str], solo: int) -> list[str]:
    """``solo`` images, alternating regions (and so VM sizes)."""
    by_region: dict[str, list[str]] = defaultdict(list)
    for name, region in sorted(images.items()):
        by_region[region].append(name)
    order = [n for group in zip(*by_region.values(), strict=False) for n in group]
    return order[:solo]


def _runs(stack: Any, dag_id: str, token: str) -> list[dict[str, Any]]:
    resp = stack.api("GET", f"dags/{dag_id}/dagRuns", token, params={"limit": 100, "order_by": "run_after"})
    resp.raise_for_status()
    return list(resp.json()["dag_runs"])


def _upstream(stack: Any, dag_id: str, token: str) -> dict[str, list[str]]:
    """task id -> its direct upstream task ids, from the DAG's tasks (``downstream_task_ids``)."""
    resp = stack.api("GET", f"dags/{dag_id}/tasks", token)
    resp.raise_for_status()
    up: dict[str, list[str]] = {t["task_id"]: [] for t in resp.json()["tasks"]}
    for t in resp.json()["tasks"]:
        for down in t.get("downstream_task_ids") or []:
            up.setdefault(down, []).append(t["task_id"])
    return up


def rescheduled(refused_paths: list[str], groups: dict[str, str]) -> set[str]:
    """``dag_id:task`` of the task instances a quota refusal rescheduled, from the refused VM writes' paths:
    the run's resource group (its plan) and the VM (``vm-smoke-…``: the smoke test, else the build VM).

    (A rescheduled task keeps its try number, and its log file is written afresh when it runs again, so
    the log does not tell.)"""
    by_group = {g.lower(): d for d, g in groups.items()}
    out = set()
    for path in refused_paths:
        parts = path.split("/")
        low = [p.lower() for p in parts]
        if "resourcegroups" not in low or "virtualmachines" not in low:
            continue
        dag_id = by_group.get(parts[low.index("resourcegroups") + 1].lower())
        if dag_id is not None:
            vm = parts[low.index("virtualmachines") + 1].lower()
            out.add(f"{dag_id}:{'smoke_test' if vm.startswith('vm-smoke') else 'provision_vm'}")
    return out


# ------------------------------------------------------------------------------------------------
# analysing
# ------------------------------------------------------------------------------------------------
def _ts(text: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def _wall(run: dict[str, Any]) -> float:
    return (_ts(run.get("end_date")) or 0.0) - (_ts(run.get("start_date")) or 0.0)


def _key(t: dict[str, Any]) -> str:
    return t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]"


def _ready_times(tis: list[dict[str, Any]], upstream: dict[str, list[str]], run: dict[str, Any]) -> dict[str, float]:
    ends: dict[str, list[float]] = defaultdict(list)
    for t in tis:
        end = _ts(t.get("end_date"))
        if end is not None:
            ends[t["task_id"]].append(end)
    run_start = _ts(run.get("start_date")) or 0.0
    out = {}
    for t in tis:
        ups = [e for u in upstream.get(t["task_id"], []) for e in ends.get(u, [])]
        out[_key(t)] = max(ups) if ups else run_start
    return out


def overheads(tis_by_dag: dict[str, list[dict[str, Any]]], runs: dict[str, dict[str, Any]],
              upstream: dict[str, list[str]], rescheduled: set[str]) -> list[dict[str, Any]]:
    """Per task instance: ready, start, pool wait and scheduler overhead (DEFINITIONS)."""
    releases: dict[str, list[float]] = defaultdict(list)  # when each factory pool got slots back
    for tis in tis_by_dag.values():
        for t in tis:
            start, end, scheduled = _ts(t.get("start_date")), _ts(t.get("end_date")), _ts(t.get("scheduled_when"))
            if not t["pool"].startswith("image_factory_"):
                continue
            if end is not None:
                releases[t["pool"]].append(end)
            if scheduled is not None and start is not None and scheduled > start:  # resumed from a deferral:
                releases[t["pool"]].append(scheduled)  # scheduled again, it held no slot until queued
    out = []
    for dag_id, tis in tis_by_dag.items():
        ready = _ready_times(tis, upstream, runs[dag_id])
        for t in tis:
            key, start = _key(t), _ts(t.get("start_date"))
            if start is None or t["state"] == "skipped" or f"{dag_id}:{t['task_id']}" in rescheduled:
                continue
            r, pooled = ready[key], t["pool"].startswith("image_factory_")
            row: dict[str, Any] = {"dag_id": dag_id, "task": key, "pool": t["pool"], "ready": r, "start": start}
            scheduled, queued = _ts(t.get("scheduled_when")), _ts(t.get("queued_when"))
            if scheduled is not None and queued is not None and r <= scheduled <= queued <= start:
                row["split_s"] = {"ready_to_scheduled": scheduled - r, "scheduled_to_queued": queued - scheduled,
                                  "queued_to_start": start - queued}
                wait = queued - scheduled if pooled else 0.0  # a factory pool's task waits for slots there
            else:  # a task that deferred: these times are its resumption's; the pool's last release before it started
                released = [e for e in releases.get(t["pool"], []) if r < e <= start] if pooled else []
                wait = max(released) - r if released else 0.0
            row["pool_wait_s"], row["overhead_s"] = wait, max(0.0, start - r - wait)
            out.append(row)
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    from tests.e2e.fleet import most_at_once

    solo = [_wall(s["run"]) for s in raw["solo"] if s["run"]["state"] == "success"]
    solo_mean = statistics.fmean(solo) if solo else float("nan")
    fleet_wall = _wall(raw["fleet_run"])
    images = raw["images"]
    total = solo_mean * images
    bound = max(rp["images"] * solo_mean / rp["builds"] for rp in raw["plan"].values() if rp["images"])
    runs = {d: r for d, r in raw["fleet_runs"].items() if r}
    waited = rescheduled(raw["refused_paths"], raw["groups"])
    rows = overheads(raw["task_instances"], runs, raw["upstream"], waited)
    per = [r["overhead_s"] for r in rows]
    splits = [r["split_s"] for r in rows if "split_s" in r]
    regions: dict[str, Any] = {}
    quotas = {q["location"]: q for q in raw["quotas"]}
    for region, rp in raw["plan"].items():
        mine = [d for d in runs if raw["regions"][d.removeprefix("golden_")] == region]
        builds = most_at_once(((_ts(runs[d]["start_date"]) or 0.0), (_ts(runs[d]["end_date"]) or 0.0), 1) for d in mine)
        occupied = raw["pools"]["most"].get(f"image_factory_vcpus_{region}", {}).get("occupied_slots")
        q = quotas.get(region, {})
        regions[region] = {
            "images": rp["images"], "quota_vcpus": rp["vcpus"], "builds_pool": rp["builds"],
            "vcpu_high_water": (q.get("highWater") or {}).get("cores"), "vcpu_pool_occupied_most": occupied,
            "builds_at_once_most": builds.most,
            "starved_samples": {p: n for p, n in raw["pools"]["starved_samples"].items() if p.endswith(f"_{region}")},
        }
    return {
        "images": images, "time_factor": raw["time_factor"], "parallelism": raw["parallelism"],
        "state": raw["fleet_run"]["state"],
        "image_runs": {"success": sum(1 for r in runs.values() if r["state"] == "success"), "total": len(runs)},
        "solo_s": solo, "solo_mean_s": solo_mean, "fleet_wall_s": fleet_wall,
        "fleet_build_mean_s": statistics.fmean(_wall(r) for r in runs.values()) if runs else float("nan"),
        "sum_of_individual_builds_s": total, "fleet_over_sum": fleet_wall / total if total else float("nan"),
        "builds_pool_bound_s": bound, "fleet_over_bound": fleet_wall / bound if bound else float("nan"),
        "overhead": {"tasks": len(per), "mean_s": statistics.fmean(per) if per else float("nan"),
                     "p50_s": _pct(per, 0.5), "p90_s": _pct(per, 0.9), "max_s": max(per, default=float("nan")),
                     "over_target": sum(1 for v in per if v > TARGET_OVERHEAD_S), "target_s": TARGET_OVERHEAD_S,
                     "met": bool(per) and statistics.fmean(per) <= TARGET_OVERHEAD_S,
                     "rescheduled_left_out": sum(1 for d, tis in raw["task_instances"].items() for t in tis
                                                 if f"{d}:{t['task_id']}" in waited),
                     "pool_wait_total_s": sum(r["pool_wait_s"] for r in rows),
                     "split_median_s": ({k: statistics.median(s[k] for s in splits) for k in splits[0]}
                                        if splits else {}),
                     "worst": sorted(rows, key=lambda r: -r["overhead_s"])[:5]},
        "regions": regions, "quota_refusals": raw["quota_refusals"],
        "load_1min": {"mean": statistics.fmean(raw["load"]) if raw["load"] else 0.0,
                      "max": max(raw["load"], default=0.0)},
        "definitions": DEFINITIONS, "pids": raw.get("pids", {}),
    }


def render(r: dict[str, Any]) -> str:
    o = r["overhead"]
    lines = [
        f"fleet of {r['images']} images on simulated guests, time factor {r['time_factor']}, LocalExecutor "
        f"parallelism {r['parallelism']}: {r['state']} ({r['image_runs']['success']}/{r['image_runs']['total']} image "
        f"runs succeeded); 1-min load average: mean {r['load_1min']['mean']:.1f}, max {r['load_1min']['max']:.1f}",
        f"solo builds: {', '.join(f'{s:.1f}' for s in r['solo_s'])} s (mean {r['solo_mean_s']:.1f} s); "
        f"the fleet's builds took {r['fleet_build_mean_s']:.1f} s on average (run start -> end)",
        f"fleet rebuild: {r['fleet_wall_s']:.1f} s = {r['fleet_over_sum']:.2f}x the sum of the individual builds "
        f"({r['sum_of_individual_builds_s']:.1f} s), {r['fleet_over_bound']:.2f}x the builds-pool bound "
        f"({r['builds_pool_bound_s']:.1f} s)",
        f"scheduler overhead per task ({o['tasks']} task instances): mean {o['mean_s']:.2f} s, p50 {o['p50_s']:.2f}, "
        f"p90 {o['p90_s']:.2f}, max {o['max_s']:.2f}; {o['over_target']} over {o['target_s']:.0f} s "
        f"({'met' if o['met'] else 'NOT met'}: mean <= {o['target_s']:.0f} s); pool waits left out: "
        f"{o['pool_wait_total_s']:.1f} s in all; rescheduled by a quota refusal, left out: {o['rescheduled_left_out']}",
    ]
    if o["split_median_s"]:
        medians = o["split_median_s"].items()
        lines.append("  medians: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in medians))
    for w in o["worst"][:3]:
        lines.append(f"  worst: {w['dag_id']}.{w['task']} {w['overhead_s']:.2f} s ({w['pool']})")
    for region, g in r["regions"].items():
        lines.append(
            f"{region}: {g['images']} images; vCPU high-water {g['vcpu_high_water']} of quota {g['quota_vcpus']}, "
            f"vCPU pool slots occupied at most {g['vcpu_pool_occupied_most']}; builds at once "
            f"{g['builds_at_once_most']} of pool {g['builds_pool']}; samples with tasks waiting on a full pool: "
            + ", ".join(f"{p} {n}" for p, n in sorted(g["starved_samples"].items())))
    lines.append(f"VM writes the local Azure refused for the quota (their tasks waited and tried again): "
                 f"{r['quota_refusals']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", type=int, default=20, help="image definitions in the fleet (two regions)")
    p.add_argument("--solo", type=int, default=2, help="images built alone first, one at a time")
    p.add_argument("--time-factor", type=float, default=0.02, help="Azure's durations scaled")
    p.add_argument("--parallelism", type=int, default=8, help="LocalExecutor worker slots")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up on a run after this many seconds")
    p.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary directory)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--definitions", action="store_true", help="print how every number is defined")
    args = p.parse_args(argv)
    if not 2 <= args.images <= 200 or not 1 <= args.solo <= args.images or not 0 <= args.time_factor <= 1:
        p.error("need 2 <= --images <= 200, 1 <= --solo <= --images and 0 <= --time-factor <= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    import logging

    args = parse_args(argv)
    logging.getLogger("azure").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir=args.dir) as tmp:
        raw = collect(args.images, args.solo, args.time_factor, args.parallelism, Path(tmp), args.timeout)
    report = analyse(raw)
    return publish(report, render(report), DEFINITIONS, show_definitions=args.definitions, json_path=args.json)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
