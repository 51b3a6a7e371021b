"""Smoke test of the fleet benchmark: a small simulated fleet reports its ratios (no timings asserted),
and unit tests of how scheduler overhead leaves pool waits and quota reschedules out."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from bench import fleet_run as bench
from tests.e2e.fleet import most_at_once


@pytest.mark.slow
@pytest.mark.guests("simulated")
@pytest.mark.timeout(2400)
def test_a_small_fleet_reports_fleet_time_against_solo_builds_and_overhead_per_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet.json"
    assert bench.main(["--images", "4", "--solo", "1", "--parallelism", "6", "--dir", str(tmp_path),
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["state"] == "success" and report["image_runs"] == {"success": 4, "total": 4}
    assert len(report["solo_s"]) == 1 and report["solo_mean_s"] > 0
    for ratio in (report["fleet_over_sum"], report["fleet_over_bound"], report["overhead"]["mean_s"]):
        assert isinstance(ratio, float) and math.isfinite(ratio) and ratio >= 0
    overhead = report["overhead"]
    assert overhead["tasks"] >= 4 * 15  # every task instance of every image run that ran
    assert overhead["p50_s"] <= overhead["p90_s"] <= overhead["max_s"]
    for region, g in report["regions"].items():
        assert g["vcpu_high_water"] <= g["quota_vcpus"], region
        assert g["builds_at_once_most"] <= g["builds_pool"], region
    printed = capsys.readouterr().out
    assert "x the sum of the individual builds" in printed and "scheduler overhead per task" in printed
    for pid in report["pids"].values():  # the emulator and every Airflow component are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.json"]


def ti(task: str, times: tuple[float, ...], pool: str = "default_pool", state: str = "success") -> dict[str, Any]:
    """A task instance from (scheduled, queued, start, end) seconds."""
    from datetime import UTC, datetime

    scheduled, queued, start, end = (datetime.fromtimestamp(t, UTC).isoformat() for t in times)
    return {"task_id": task, "map_index": -1, "scheduled_when": scheduled, "queued_when": queued, "start_date": start,
            "end_date": end, "pool": pool, "pool_slots": 2, "state": state, "dag_run_id": "r", "try_number": 1}


def test_overhead_counts_from_ready_and_leaves_out_pool_waits_and_reschedules() -> None:
    vcpus = "image_factory_vcpus_westeurope"
    upstream = {"plan": [], "provision_vm": ["plan"], "wait_for_guest": ["provision_vm"],
                "customise": ["wait_for_guest"], "report": ["customise"]}
    run = {"start_date": "1970-01-01T00:00:00+00:00"}
    a = [ti("plan", (0.5, 0.8, 1.0, 3.0)),
         ti("provision_vm", (3.2, 3.4, 3.5, 10.0), vcpus),
         # deferred: its scheduled/queued times are its resumption's (20.0), when it gave its slots up
         ti("wait_for_guest", (20.0, 20.1, 10.4, 22.0), vcpus)]
    b = [ti("plan", (2.0, 2.1, 2.2, 4.0)),
         ti("provision_vm", (4.1, 10.1, 10.3, 15.0), vcpus),  # waited for the pool from 4.1 to 10.1
         ti("wait_for_guest", (30.0, 30.1, 20.5, 31.0), vcpus),  # ready 15.0; slots came back at 20.0
         ti("customise", (31.2, 31.3, 40.0, 41.0), vcpus),  # a quota refusal rescheduled it: left out
         ti("report", (41.5, 41.6, 41.7, 41.8), state="skipped")]
    rows = bench.overheads({"a": a, "b": b}, {"a": run, "b": run}, upstream, rescheduled={"b:customise"})
    got = {(r["dag_id"], r["task"]): (round(r["overhead_s"], 3), round(r["pool_wait_s"], 3)) for r in rows}
    assert got == {("a", "plan"): (1.0, 0.0), ("a", "provision_vm"): (0.3, 0.2), ("a", "wait_for_guest"): (0.4, 0.0),
                   ("b", "plan"): (2.2, 0.0), ("b", "provision_vm"): (0.3, 6.0),
                   ("b", "wait_for_guest"): (0.5, 5.0)}


def test_most_at_once_weights_overlapping_spans() -> None:
    assert most_at_once([(0.0, 10.0, 2), (5.0, 6.0, 4), (6.0, 8.0, 4), (10.0, 12.0, 8)]).most == 8
    assert most_at_once([(0.0, 1.0, 1), (1.0, 2.0, 1)]).most == 1  # one ends as the next starts


def test_quota_refusals_point_at_the_task_that_was_rescheduled() -> None:
    base = "/subscriptions/s/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}"
    groups = {"golden_a": "rg-golden-a-1f2e", "golden_b": "rg-golden-b-9c8d"}
    refused = [base.format("RG-GOLDEN-A-1F2E", "vm-build-1f2e"), base.format("rg-golden-b-9c8d", "vm-smoke-eastus-9c8d"),
               base.format("rg-someone-else", "vm-build-0000")]
    assert bench.rescheduled(refused, groups) == {"golden_a:provision_vm", "golden_b:smoke_test"}
