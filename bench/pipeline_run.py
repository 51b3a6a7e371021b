"""One run of the main pipeline under real Airflow processes: where does the time (and the ARM traffic) go?

Targets (BENCHMARKS.md), all measured on the same run:

- orchestration overhead (run time minus the time guests, Azure operations and disk copies
  themselves took) <= 5 % of the run;
- worker-slot seconds while waiting <= 10 % of the run's wall time (waits defer to the triggerer);
- ARM requests <= 1.5x the minimum the stages need, and no poll sooner than Retry-After.

The benchmark starts its own local Azure (``tests/localazure.py``; QEMU guests at time factor 0.05
as the main job, or simulated guests) and its own Airflow (``devstack/airflow.py``: api-server,
scheduler, dag-processor, triggerer, LocalExecutor) on free ports in a temporary directory,
triggers ``golden_debian12-web`` over the REST API, waits for it, and then reads:

- Airflow's REST API: every task instance and every try (start, end, state), each try's log
  (structured events with timestamps: when the task deferred, when it resumed, the guest scripts
  it ran, the trigger's events, and every ARM request the SDK made from the task), the report XCom;
- the emulator: its request log (``/_emulator/requests``), its Retry-After setting, and the
  status resource (startTime/endTime) of every long-running operation the run polled.

Everything is stopped by PID in a ``finally``. Each number is printed with a short form of its
definition; ``--definitions`` prints them in full (``DEFINITIONS``).

    python -m bench.pipeline_run [--runtime qemu|simulated] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.output import publish

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "plugins"):  # the repository and the factory's hook, as pytest has them
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import requests  # noqa: E402

IMAGE = "debian12-web"
DAG_ID = "golden_" + IMAGE
CONN_ID = "bench_pipeline_run"
LOCAL_SCOPE = "https://management.core.windows.net/.default"  # what the hook asks for on local Azure
TARGETS = {"overhead_share": 0.05, "waiting_slot_share": 0.10, "arm_ratio": 1.5}
GUEST_SCRIPT_ENDED = re.compile(r"Guest script .* ended with exit code \S+ after ([0-9.]+) s")
STATE_WAIT_GAP_S = 30.0  # instanceView reads of one VM further apart than this belong to different waits
OP_STATUS = re.compile(r"/(operations|capsOperations|operationresults|operationResults)/([0-9a-fA-F-]{36})")
DEFINITIONS = {
    "stage wall": "first try's start -> last try's end (deferred time, retries and retry delays included)",
    "stage slot": "time the task held a worker slot: each try's running periods, i.e. its start -> end minus "
    "every deferral ('Pausing task as DEFERRED' -> the next 'Pre Execute' in the try's log)",
    "guest and disk time": "length of the union of the intervals in which a guest or Azure was doing work the "
    "run waited for: every ARM long-running operation the run polled (its status "
    "resource's startTime -> endTime); each VM's PUT -> its SSH port answered (the wait "
    "trigger's 'Trigger fired event'); the guest commands of customise and check_changes (each "
    "from its start to its 'ended ... after N s' line, the wait for first-boot cloud-init included); "
    "smoke checks (first script -> last PASS/FAIL line); "
    "deprovision command start -> the stop trigger fired; gallery version PUT -> the "
    "replication trigger fired; resource-group DELETE -> its trigger fired. Trigger-based "
    "ends include up to one poll interval (2-5 s) of polling, so the overhead is, if "
    "anything, underestimated",
    "orchestration overhead": "run wall time (DAG run start -> end) minus guest and disk time, as a share of the run",
    "ARM minimum": "distinct writes (method + resource path; a repeated write of the same resource counts once) + "
    "distinct resources read (one GET each, operation-status resources excluded) + for every "
    "long-running operation polled, max(1, ceil(duration / Retry-After)) polls + for every wait on a "
    "VM's state (a run of instanceView reads of one VM, a gap over STATE_WAIT_GAP_S starting a new "
    "one), the reads one every Retry-After over that wait would make (the same floor an LRO poll has: "
    "floor(span / Retry-After) + 1); Entra ID token requests are not ARM and are counted apart",
    "slot waiting": "slot time during which the task was blocked on an ARM long-running operation it polled "
    "itself (from the operation's startTime to the task's last poll of it, per the SDK's request "
    "lines in the task's log), plus every try that failed or was retried (its slot time bought "
    "nothing)",
}


# ------------------------------------------------------------------------------------------------
# collecting
# ------------------------------------------------------------------------------------------------
def collect(runtime: str, time_factor: float, work: Path, timeout: float, progress: bool = True) -> dict[str, Any]:
    """Run the pipeline once on a fresh local Azure + Airflow; return every raw record the analysis uses."""
    from devstack.airflow import AirflowStack
    from tests.localazure import LocalAzure, free_port

    emu = LocalAzure(work / "azure", time_factor=time_factor, env={"LOCAL_AZURE_LINUX_RUNTIME": runtime})
    stack: AirflowStack | None = None
    raw: dict[str, Any] = {"runtime": runtime, "time_factor": time_factor, "dag_id": DAG_ID}
    try:
        emu.start(timeout=120)
        raw["emulator_pid"] = emu.proc.pid if emu.proc else None
        raw["linux_runtime"] = emu.linux_runtime
        stack = AirflowStack(work / "airflow", port=free_port(), azure_connection=emu.connection_uri_env())
        began = time.monotonic()
        stack.start(timeout=300)
        raw["airflow_pids"] = {name: p.pid for name, p in stack.procs.items()}
        raw["airflow_startup_s"] = time.monotonic() - began
        token = stack.token()
        stack.wait_for_dag(DAG_ID, token, timeout=300)
        raw["triggered_at"] = time.time()
        run_id = stack.trigger(DAG_ID, {"reason": "bench.pipeline_run"}, token)
        raw["run_id"] = run_id
        raw["load"] = []
        raw["run"] = _wait_for_run(stack, run_id, timeout, progress, raw["load"])
        token = stack.token()
        raw["task_instances"] = stack.task_instances(DAG_ID, run_id, token)
        raw["tries"] = {_ti_key(ti): _tries(stack, run_id, ti, token) for ti in raw["task_instances"]}
        raw["logs"] = {
            f"{key}#{t['try_number']}": _log(stack, run_id, t, token)
            for key, tries in raw["tries"].items()
            for t in tries
        }
        try:
            raw["report"] = stack.xcom(DAG_ID, run_id, "report", token)
        except requests.HTTPError:
            raw["report"] = None
        raw["requests"] = emu.ops("GET", "requests")["entries"]
        raw["settings"] = emu.ops("GET", "settings")
        raw["operations"] = _operations(emu, raw["requests"])
    finally:
        if stack is not None:
            stack.stop()
        emu.stop()
    return raw


def _wait_for_run(stack: Any, run_id: str, timeout: float, progress: bool, load: list[float]) -> dict[str, Any]:
    """Poll the run once a second (showing what is running), sampling the 1-minute load average."""
    deadline, shown = time.monotonic() + timeout, ""
    token, token_at = stack.token(), time.monotonic()
    while time.monotonic() < deadline:
        load.append(os.getloadavg()[0])
        if time.monotonic() - token_at > 600:
            token, token_at = stack.token(), time.monotonic()
        run = stack.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}", token).json()
        if progress:
            tis = stack.task_instances(DAG_ID, run_id, token)
            busy = ", ".join(
                f"{_ti_key(t)} {t['state']}" for t in tis if t["state"] in ("running", "deferred", "up_for_retry")
            )
            if busy != shown:
                print(f"  [{time.strftime('%H:%M:%S')}] {busy or run['state']}", flush=True)
                shown = busy
        if run["state"] in ("success", "failed"):
            return dict(run)
        time.sleep(1.0)
    raise TimeoutError(f"{DAG_ID} run {run_id} did not finish within {timeout:.0f} s")


def _ti_key(ti: dict[str, Any]) -> str:
    return ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"


def _ti_path(run_id: str, ti: dict[str, Any]) -> str:
    path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
    return path + (f"/{ti['map_index']}" if ti["map_index"] >= 0 else "")


def _tries(stack: Any, run_id: str, ti: dict[str, Any], token: str) -> list[dict[str, Any]]:
    resp = stack.api("GET", _ti_path(run_id, ti) + "/tries", token)
    resp.raise_for_status()
    tries = [t for t in resp.json()["task_instances"] if t.get("start_date")]
    return sorted(tries, key=lambda t: t["try_number"])


def _log(stack: Any, run_id: str, t: dict[str, Any], token: str) -> list[dict[str, Any]]:
    """A try's log as (timestamp, text) events; the triggerer's lines for that try are merged in by Airflow."""
    path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{t['task_id']}/logs/{t['try_number']}"
    resp = requests.get(  # stack.api() sets its own headers; the JSON form needs an Accept header
        f"{stack.url}/api/v2/{path}",
        params={"map_index": t["map_index"], "full_content": "true"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=60,
    )
    if not resp.ok:
        return []
    events = []
    for e in resp.json().get("content") or []:
        if isinstance(e, dict) and e.get("timestamp"):
            events.append({"ts": _ts(e["timestamp"]), "event": str(e.get("event") or "")[:400]})
    return events


def _operations(emu: Any, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """startTime/endTime of every long-running operation the run polled, read from its status resource."""
    hook = emu.hook(CONN_ID)
    token = hook.credential.get_token(LOCAL_SCOPE).token
    out: dict[str, Any] = {}
    for path in sorted({e["path"] for e in entries if OP_STATUS.search(e["path"])}):
        op_id = OP_STATUS.search(path).group(2)  # type: ignore[union-attr]
        if op_id in out:
            continue
        resp = requests.get(
            emu.endpoint + path,
            params={"api-version": "2024-07-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=emu.ca,
            timeout=30,
        )
        body = (
            resp.json() if resp.content and resp.headers.get("content-type", "").startswith("application/json") else {}
        )
        start, end = body.get("startTime"), body.get("endTime")
        out[op_id] = {
            "path": path,
            "status": body.get("status") or resp.status_code,
            "start": _ts(start) if start else None,
            "end": _ts(end) if end else None,
        }
    return out


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------------------------------------
# analysing
# ------------------------------------------------------------------------------------------------
def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    run = raw["run"]
    run_start, run_end = _ts(run["start_date"]), _ts(run["end_date"])
    wall = run_end - run_start
    stages = _stages(raw)
    work = _work_intervals(raw)
    busy = _measure(_clip(_union(i[1:] for i in work), run_start, run_end))
    by_kind: dict[str, float] = defaultdict(float)
    for kind, a, b in work:
        by_kind[kind] += max(0.0, min(b, run_end) - max(a, run_start))
    arm = _arm(raw, run_start, run_end)
    slot_total = sum(s["slot_s"] for s in stages.values())
    deferred_total = sum(s["deferred_s"] for s in stages.values())
    waiting = sum(s["slot_waiting_s"] for s in stages.values())
    overhead = wall - busy
    window = [(run_start, run_end)]
    work_union = _clip(_union(i[1:] for i in work), run_start, run_end)
    in_tasks = _union(span for st in stages.values() for span in st["tries_spans"])
    outside = _subtract(window, in_tasks)
    retry_delays = _union(
        (a[1], b[0]) for st in stages.values() for a, b in zip(st["tries_spans"], st["tries_spans"][1:], strict=False)
    )
    in_retry = _measure(_intersect(outside, retry_delays))
    where = {
        "between tasks: retry delays": in_retry,
        "between tasks: scheduling": _measure(outside) - in_retry,
    }
    for key, st in stages.items():
        spans = _union(st["tries_spans"])
        where[key] = _measure(spans) - _measure(_intersect(spans, work_union))
    return {
        "runtime": raw["runtime"],
        "time_factor": raw["time_factor"],
        "dag_id": raw["dag_id"],
        "run_id": raw.get("run_id"),
        "state": run["state"],
        "wall_s": wall,
        "airflow_startup_s": raw.get("airflow_startup_s"),
        "load_1min": {
            "mean": sum(raw.get("load") or [0]) / max(1, len(raw.get("load") or [])),
            "max": max(raw.get("load") or [0]),
        },
        "stages": stages,
        "guest_and_disk": {"seconds": busy, "intervals_by_kind_s": dict(by_kind), "intervals": work},
        "overhead": {
            "seconds": overhead,
            "where_s": dict(sorted(where.items(), key=lambda kv: -kv[1])),
            "share": overhead / wall,
            "target": TARGETS["overhead_share"],
            "met": overhead / wall <= TARGETS["overhead_share"],
        },
        "slots": {
            "slot_s": slot_total,
            "slot_share": slot_total / wall,
            "deferred_s": deferred_total,
            "deferred_share": deferred_total / wall,
            "waiting_s": waiting,
            "waiting_share": waiting / wall,
            "target": TARGETS["waiting_slot_share"],
            "met": waiting / wall <= TARGETS["waiting_slot_share"],
        },
        "arm": arm,
        "stage_seconds_reported": (raw.get("report") or {}).get("stage_seconds"),
        "definitions": DEFINITIONS,
        "pids": {"emulator": raw.get("emulator_pid"), **(raw.get("airflow_pids") or {})},
    }


def _stages(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ops = raw.get("operations") or {}
    out: dict[str, dict[str, Any]] = {}
    for key, tries in raw["tries"].items():
        if not tries:
            continue
        slot = deferred = waiting = 0.0
        spans = []
        for t in tries:
            start, end = _ts(t["start_date"]), _ts(t["end_date"] or t["start_date"])
            spans.append((start, end))
            pauses = _deferrals(raw["logs"].get(f"{key}#{t['try_number']}", []), end)
            d = sum(b - a for a, b in pauses)
            running = max(0.0, end - start - d)
            slot += running
            deferred += d
            if t["state"] != "success":
                waiting += running  # a failed try's slot time bought nothing
            else:
                waiting += _lro_wait(raw["logs"].get(f"{key}#{t['try_number']}", []), ops, start, end, pauses)
        first, last = tries[0], tries[-1]
        out[key] = {
            "tries": len(tries),
            "state": last["state"],
            "start": _ts(first["start_date"]),
            "end": _ts(last["end_date"] or last["start_date"]),
            "wall_s": _ts(last["end_date"] or last["start_date"]) - _ts(first["start_date"]),
            "slot_s": slot,
            "deferred_s": deferred,
            "slot_waiting_s": waiting,
            "failed_tries": [t["try_number"] for t in tries if t["state"] != "success"],
            "tries_spans": spans,
        }
    return dict(sorted(out.items(), key=lambda kv: kv[1]["start"]))


def _deferrals(events: list[dict[str, Any]], end: float) -> list[tuple[float, float]]:
    """Each deferral: 'Pausing task as DEFERRED' -> the next 'Pre Execute' (the resumed worker), else the try's end."""
    pauses, paused_at = [], None
    for e in sorted(events, key=lambda e: e["ts"]):
        if e["event"].startswith("Pausing task as DEFERRED"):
            paused_at = e["ts"]
        elif paused_at is not None and "Pre Execute" in e["event"]:
            pauses.append((paused_at, e["ts"]))
            paused_at = None
    if paused_at is not None:
        pauses.append((paused_at, max(paused_at, end)))
    return pauses


def _lro_wait(
    events: list[dict[str, Any]], ops: dict[str, Any], start: float, end: float, pauses: list[tuple[float, float]]
) -> float:
    """Slot time blocked on LROs this task polled: the operation's start -> the task's last poll of it."""
    last_poll: dict[str, float] = {}
    for e in events:
        if e["event"].startswith("Request URL"):
            m = OP_STATUS.search(e["event"])
            if m:
                last_poll[m.group(2)] = e["ts"]
    spans = []
    for op_id, polled in last_poll.items():
        op = ops.get(op_id) or {}
        if op.get("start") is not None:
            spans.append((max(op["start"], start), min(polled, end)))
    blocked = _union(spans)
    return _measure(blocked) - _measure(_intersect(blocked, pauses))


def _work_intervals(raw: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(kind, start, end) of everything a guest or Azure did that the run waited for (see DEFINITIONS).

    A wait ends at the first 'Trigger fired event' after it began: a retried task's later tries
    fire again on work that was already done, which is not more work.
    """
    work: list[tuple[str, float, float]] = []
    for op in (raw.get("operations") or {}).values():
        if op.get("start") is not None and op.get("end") is not None:
            work.append(("ARM long-running operations", op["start"], op["end"]))
    reqs = [r for r in raw["requests"] if r["method"] in ("PUT", "DELETE")]
    logs: dict[str, list[dict[str, Any]]] = raw["logs"]

    def fired(task: str, vm: str | None = None) -> list[float]:
        return sorted(
            e["ts"]
            for key, events in logs.items()
            if key.split("#")[0].split("[")[0] == task and (vm is None or _vm_of(events) == vm)
            for e in events
            if e["event"].startswith("Trigger fired event")
        )

    def ended(task: str, vm: str | None = None) -> list[float]:
        """When the wait ended: its trigger fired or, for a wait that was already over when the task
        polled once before deferring, the task's last log line."""
        times = fired(task, vm)
        if times:
            return times
        return sorted(
            max(e["ts"] for e in events)
            for key, events in logs.items()
            if events and key.split("#")[0].split("[")[0] == task and (vm is None or _vm_of(events) == vm)
        )

    def first_after(times: list[float], t: float) -> float | None:
        return next((x for x in times if x > t), None)

    def add(kind: str, start: float | None, end: float | None) -> None:
        if start is not None and end is not None and end > start:
            work.append((kind, start, end))

    vm_puts: dict[str, list[float]] = defaultdict(list)  # a retried smoke test creates its VM again
    for r in reqs:
        if r["method"] == "PUT" and r["operation"] == "Microsoft.Compute/virtualMachines/write":
            vm_puts[r["path"].rsplit("/", 1)[-1]].append(_sent(r))
    for vm, puts in vm_puts.items():
        answered = ended("smoke_test", vm) if "smoke" in vm else ended("wait_for_guest")
        for put in sorted(puts):
            add("VM PUT -> SSH answers", put, first_after(answered, put))
    for key, events in logs.items():
        task = key.split("#")[0].split("[")[0]
        scripts = [e for e in events if e["event"].startswith(("Running guest script", 'Running "'))]
        if not scripts:
            continue
        if task == "smoke_test":
            verdicts = [e["ts"] for e in events if e["event"].startswith(("PASS ", "FAIL "))]
            add("guest scripts (smoke checks)", scripts[0]["ts"], max(verdicts or [scripts[-1]["ts"]]))
        elif task in ("customise", "check_changes"):
            # each command from its start to the line that says how long it ran (first-boot cloud-init included:
            # the guest finishing its own boot is guest work); without those lines, the report's script seconds
            ended_lines = [e for e in events if GUEST_SCRIPT_ENDED.match(e["event"])]
            if ended_lines:
                for e in ended_lines:
                    seconds = float(GUEST_SCRIPT_ENDED.match(e["event"]).group(1))  # type: ignore[union-attr]
                    add(f"guest scripts ({task})", e["ts"] - seconds, e["ts"])
            elif task == "customise":
                seconds = sum(s.get("seconds") or 0.0 for s in (raw.get("report") or {}).get("scripts", []))
                add("guest scripts (customise)", scripts[0]["ts"], scripts[0]["ts"] + seconds)
        elif task == "generalize":
            add("deprovision + shutdown", scripts[0]["ts"], first_after(ended("wait_for_stop"), scripts[0]["ts"]))
    version_put = [_sent(r) for r in reqs if r["operation"] == "Microsoft.Compute/galleries/images/versions/write"]
    if version_put:
        add(
            "replication (version PUT -> all regions Completed)",
            min(version_put),
            first_after(ended("replicate"), min(version_put)),
        )
    rg_delete = [_sent(r) for r in reqs if r["operation"] == "Microsoft.Resources/subscriptions/resourceGroups/delete"]
    if rg_delete:
        add("resource group deletion", min(rg_delete), first_after(ended("teardown"), min(rg_delete)))
    return sorted(work, key=lambda w: w[1])


def _vm_of(events: list[dict[str, Any]]) -> str | None:
    """The smoke VM a try waited for (the task logs 'Smoke VM <name> in <region>'); None for the build VM."""
    for e in events:
        m = re.match(r"Smoke VM (\S+) in ", e["event"])
        if m:
            return m.group(1)
    return None


def _sent(r: dict[str, Any]) -> float:
    """The emulator logs a request when it has answered; its send time is that minus its duration."""
    return float(r["time"]) - float(r["ms"]) / 1000.0


def _arm(raw: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """Requests per operation type in the run's window, next to the minimum the stages need (DEFINITIONS)."""
    entries = [r for r in raw["requests"] if start - 1.0 <= _sent(r) <= end + 1.0]
    identity = [r for r in entries if r["operation"].startswith("identity/")]
    arm = [r for r in entries if not r["operation"].startswith(("identity/", "emulator/"))]
    per_op = Counter(_kind(r) for r in arm)
    retry_after = float((raw.get("settings") or {}).get("retry_after") or 1)
    ops = raw.get("operations") or {}
    needed: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    polled: set[str] = set()
    state_reads: dict[str, list[float]] = defaultdict(list)
    for r in arm:
        m = OP_STATUS.search(r["path"])
        if m and r["method"] == "GET":
            if m.group(2) not in polled:
                polled.add(m.group(2))
                needed[_kind(r)] += _polls_needed(ops.get(m.group(2)) or {}, retry_after)
        elif r["method"] == "GET" and r["path"].rstrip("/").lower().endswith("/instanceview"):
            state_reads[_kind(r) + " " + r["path"].lower()].append(_sent(r))
        elif (r["method"], r["path"]) not in seen:  # each write, and each resource read, once
            seen.add((r["method"], r["path"]))
            needed[_kind(r)] += 1
    state_waits = 0
    for key, times in state_reads.items():
        waits = _state_waits(times)
        state_waits += len(waits)
        needed[key.rsplit(" ", 1)[0]] += sum(_state_polls_needed(span, retry_after) for span in waits)
    minimum = sum(needed.values())
    writes = sum(n for k, n in needed.items() if not k.startswith(("GET ", "HEAD ")))
    polls = sum(n for k, n in needed.items() if OP_STATUS_KIND.search(k))
    state_polls = sum(n for k, n in needed.items() if k.lower().endswith("instanceview/read"))
    repeats = Counter({k: per_op[k] - needed[k] for k in per_op})
    return {
        "total": len(arm),
        "per_operation": dict(per_op.most_common()),
        "minimum_per_operation": dict(needed),
        "identity_requests": len(identity),
        "minimum": minimum,
        "minimum_parts": {
            "distinct_writes": writes,
            "distinct_reads": minimum - writes - polls - state_polls,
            "lro_polls_at_retry_after": polls,
            "lros_polled": len(polled),
            "state_polls_at_retry_after": state_polls,
            "state_waits": state_waits,
        },
        "ratio": len(arm) / minimum if minimum else float("nan"),
        "target": TARGETS["arm_ratio"],
        "met": bool(minimum) and len(arm) / minimum <= TARGETS["arm_ratio"],
        "repeats_by_operation": {k: v for k, v in repeats.most_common() if v > 0},
        "retry_after_s": retry_after,
        "early_polls": _early_polls(arm, ops, retry_after),
    }


OP_STATUS_KIND = re.compile(r"operations/read|capsOperations/read|operationResults/read", re.IGNORECASE)


def _kind(r: dict[str, Any]) -> str:
    return f"{r['method']} {r['operation']}"


def _polls_needed(op: dict[str, Any], retry_after: float) -> int:
    """Polls at the advertised Retry-After until the operation ended (at least the one that sees it end)."""
    if op.get("start") is None or op.get("end") is None:
        return 1
    return max(1, math.ceil((op["end"] - op["start"]) / retry_after - 1e-9))


def _state_waits(sent: list[float]) -> list[float]:
    """The spans (first read → last read) of the waits in one VM's instanceView reads."""
    spans: list[float] = []
    times = sorted(sent)
    first = previous = times[0] if times else 0.0
    for t in times[1:]:
        if t - previous > STATE_WAIT_GAP_S:
            spans.append(previous - first)
            first = t
        previous = t
    return [*spans, previous - first] if times else []


def _state_polls_needed(span: float, retry_after: float) -> int:
    """Reads one every Retry-After from a wait's first read to its last, both included."""
    return math.floor(span / retry_after + 1e-9) + 1


def _early_polls(arm: list[dict[str, Any]], ops: dict[str, Any], retry_after: float) -> list[dict[str, Any]]:
    """Polls of an operation's status sooner than Retry-After after its start or after the previous poll.

    The emulator answers every in-progress operation with ``Retry-After: <retry_after setting>``. Times are
    the emulator's own (send time = logged time minus the request's duration); 50 ms of slack covers the
    clock reads on either side.
    """
    by_op: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (sent, answered) per status GET
    for r in arm:
        m = OP_STATUS.search(r["path"])
        if m and r["method"] == "GET":
            by_op[m.group(2)].append((_sent(r), float(r["time"])))
    out = []
    for op_id, polls in by_op.items():
        polls.sort()
        op = ops.get(op_id) or {}
        previous, answered, since = op.get("start"), op.get("start"), "start"
        for sent, done in polls:
            # once an answer came after the operation ended, later GETs read its result: not polls
            finished = op.get("end") is not None and answered is not None and answered >= op["end"]
            if previous is not None and sent - previous < retry_after - 0.05 and not finished:
                out.append(
                    {"operation": op_id, "after": since, "gap_s": round(sent - previous, 3), "path": op.get("path", "")}
                )
            previous, answered, since = sent, done, "poll"
    return out


def _union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _clip(spans: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    return [(max(a, lo), min(b, hi)) for a, b in spans if min(b, hi) > max(a, lo)]


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return _union((max(x0, y0), min(x1, y1)) for x0, x1 in a for y0, y1 in b)


def _subtract(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for lo, hi in a:
        cursor = lo
        for b0, b1 in _union(b):
            if b1 <= cursor or b0 >= hi:
                continue
            if b0 > cursor:
                out.append((cursor, b0))
            cursor = max(cursor, b1)
        if cursor < hi:
            out.append((cursor, hi))
    return out


def _measure(spans: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in spans)


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------
def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['dag_id']} on {report['runtime']} guests, time factor {report['time_factor']}: "
        f"{report['state']} in {report['wall_s']:.1f} s (Airflow start-up {report['airflow_startup_s'] or 0:.1f} s, "
        f"not counted); 1-min load average during the run: mean {report['load_1min']['mean']:.1f}, "
        f"max {report['load_1min']['max']:.1f}"
    ]
    lines.append(f"{'stage':22s} {'tries':>5s} {'wall s':>8s} {'slot s':>8s} {'deferred s':>10s} {'waiting s':>9s}")
    for key, s in report["stages"].items():
        note = f"  failed tries {s['failed_tries']}" if s["failed_tries"] else ""
        lines.append(
            f"{key:22s} {s['tries']:5d} {s['wall_s']:8.1f} {s['slot_s']:8.1f} {s['deferred_s']:10.1f} "
            f"{s['slot_waiting_s']:9.1f}{note}"
        )
    g, o = report["guest_and_disk"], report["overhead"]
    lines.append(
        f"guest and disk time: {g['seconds']:.1f} s of {report['wall_s']:.1f} s (the union of: LROs start -> end, "
        "VM PUT -> SSH answers, guest scripts, deprovision -> stopped, version PUT -> replicated, group delete; "
        "each kind alone, overlapping: "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(g["intervals_by_kind_s"].items(), key=lambda kv: -kv[1]))
        + ")"
    )
    lines.append(
        f"orchestration overhead: {o['seconds']:.1f} s = {100 * o['share']:.1f} % of the run "
        f"({_verdict(o['met'])}, target <= {100 * o['target']:.0f} %)"
    )
    lines.append(
        "  not covered by guest/disk work, by where it fell (stages overlap only in smoke_test): "
        + ", ".join(f"{k} {v:.1f}" for k, v in list(o["where_s"].items())[:8])
    )
    sl = report["slots"]
    lines.append(
        f"worker slots: {sl['slot_s']:.1f} slot-s held ({100 * sl['slot_share']:.0f} % of wall), "
        f"{sl['deferred_s']:.1f} s deferred to the triggerer ({100 * sl['deferred_share']:.0f} % of wall)"
    )
    waiters = sorted(report["stages"].items(), key=lambda kv: -kv[1]["slot_waiting_s"])
    lines.append(
        f"slot-seconds while waiting (blocked on an LRO the task polled, or a failed try): {sl['waiting_s']:.1f} s"
        f" = {100 * sl['waiting_share']:.1f} % of wall "
        f"({_verdict(sl['met'])}, target <= {100 * sl['target']:.0f} %); most in: "
        + ", ".join(f"{k} {s['slot_waiting_s']:.1f}" for k, s in waiters[:4] if s["slot_waiting_s"] > 0)
    )
    a = report["arm"]
    parts = a["minimum_parts"]
    lines.append(f"ARM requests: {a['total']} (+ {a['identity_requests']} Entra ID token/metadata requests)")
    for op, n in a["per_operation"].items():
        lines.append(f"  {n:5d}  {op}")
    lines.append(
        f"ARM minimum: {a['minimum']} = {parts['distinct_writes']} distinct writes + "
        f"{parts['distinct_reads']} distinct reads + {parts['lro_polls_at_retry_after']} polls for "
        f"{parts['lros_polled']} LROs + {parts.get('state_polls_at_retry_after', 0)} state reads for "
        f"{parts.get('state_waits', 0)} waits on a VM's state, at Retry-After {a['retry_after_s']:.0f} s"
    )
    lines.append(
        f"ARM requests / minimum: {a['ratio']:.2f}x ({_verdict(a['met'])}, target <= {a['target']}x); "
        "biggest repeats: " + ", ".join(f"{k} +{v}" for k, v in list(a["repeats_by_operation"].items())[:4])
    )
    early = a["early_polls"]
    first = [p for p in early if p["after"] == "start"]
    later = [p for p in early if p["after"] == "poll"]
    lines.append(
        f"polls sooner than Retry-After ({a['retry_after_s']:.0f} s): {len(early)} ({_verdict(not early)}): "
        f"{len(first)} first polls{_gaps(first)} right after the operation started, "
        f"{len(later)} polls{_gaps(later)} after the previous poll"
    )
    return "\n".join(lines)


def _gaps(polls: list[dict[str, Any]]) -> str:
    gaps = [p["gap_s"] for p in polls]
    return f" ({min(gaps):.3f}-{max(gaps):.3f} s)" if gaps else ""


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--runtime", choices=("qemu", "simulated"), default="qemu", help="Linux guest runtime")
    p.add_argument("--time-factor", type=float, default=0.05, help="Azure's durations scaled (main job: 0.05)")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up on the run after this many seconds")
    p.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary directory)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--raw", type=Path, default=None, help="also write the raw records (logs, requests) here")
    p.add_argument("--from-raw", type=Path, default=None, help="analyse raw records written by --raw; run nothing")
    p.add_argument("--definitions", action="store_true", help="print how every number is defined")
    args = p.parse_args(argv)
    if not 0 <= args.time_factor <= 1 or not 60 <= args.timeout <= 4 * 3600:
        p.error("need 0 <= --time-factor <= 1 and 60 <= --timeout <= 14400")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    if args.from_raw:
        raw = json.loads(args.from_raw.read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=args.dir) as tmp:
            raw = collect(args.runtime, args.time_factor, Path(tmp), args.timeout)
        if args.raw:
            args.raw.write_text(json.dumps(raw))
    report = analyse(raw)
    return publish(report, render(report), DEFINITIONS, show_definitions=args.definitions, json_path=args.json)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
