"""Smoke test of the pipeline-run benchmark: one simulated run reports every stage and every ratio (no timings)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from bench import pipeline_run as bench

# waits that take real time (a guest boots, replicas copy) must defer; wait_for_stop and teardown may
# find their wait already over when they poll once before deferring, and then finish in the task
DEFERRING = ("wait_for_guest", "replicate", "smoke_test[0]", "smoke_test[1]")


@pytest.mark.slow
@pytest.mark.guests("simulated")
def test_simulated_run_reports_every_stage_and_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert bench.main(["--runtime", "simulated", "--dir", str(tmp_path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["state"] == "success" and report["runtime"] == "simulated"
    stages = report["stages"]
    expected = _stage_keys()
    assert set(stages) == expected
    for name in expected:
        s = stages[name]
        assert s["state"] == "success" and s["tries"] >= 1, name
        assert 0 < s["slot_s"] <= s["wall_s"] + 1e-6, name
    for name in DEFERRING:  # the waits handed their slot to the triggerer
        assert stages[name]["deferred_s"] > 0, name
    assert stages["customise"]["deferred_s"] == 0
    kinds = report["guest_and_disk"]["intervals_by_kind_s"]
    for kind in (
        "ARM long-running operations",
        "VM PUT -> SSH answers",
        "guest scripts (customise)",
        "deprovision + shutdown",
        "replication (version PUT -> all regions Completed)",
    ):
        assert kinds.get(kind, 0) > 0, kind
    assert 0 < report["guest_and_disk"]["seconds"] < report["wall_s"]
    for ratio in (report["overhead"]["share"], report["slots"]["waiting_share"], report["arm"]["ratio"]):
        assert isinstance(ratio, float) and math.isfinite(ratio) and ratio >= 0
    arm = report["arm"]
    assert arm["per_operation"]["PUT Microsoft.Compute/virtualMachines/write"] >= 3  # build VM + 2 smoke VMs
    assert arm["total"] == sum(arm["per_operation"].values()) >= arm["minimum"] > 0
    assert isinstance(arm["early_polls"], list)
    printed = capsys.readouterr().out
    assert "orchestration overhead:" in printed and "ARM requests / minimum:" in printed
    for pid in report["pids"].values():  # the emulator and every Airflow component are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # its work directory too


def _stage_keys() -> set[str]:
    """Every task of the benchmarked DAG, the smoke test once per target region (it is mapped)."""
    from image_factory.dag_factory import image_dags
    from image_factory.definitions import load_file
    from image_factory.pipeline.build import include_dir

    regions = load_file(include_dir() / "images" / f"{bench.IMAGE}.yaml").regions
    tasks = set(image_dags()[bench.DAG_ID].task_ids) - {"smoke_test"}
    return tasks | {f"smoke_test[{i}]" for i in range(len(regions))}


def test_deferrals_span_pause_to_resumed_worker() -> None:
    events = [
        {"ts": 1.0, "event": "::group::Pre Execute"},
        {"ts": 2.0, "event": "Pausing task as DEFERRED. "},
        {"ts": 3.0, "event": "Trigger fired event"},
        {"ts": 4.5, "event": "::group::Pre Execute"},
        {"ts": 6.0, "event": "Pausing task as DEFERRED. "},
    ]
    assert bench._deferrals(events, end=7.0) == [(2.0, 4.5), (6.0, 7.0)]  # the last never resumed


def test_polls_sooner_than_retry_after_are_reported() -> None:
    op = "0b7d9c7e-1c1e-4a39-9d59-4a1f1f0e2a11"
    path = f"/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/{op}"
    polls = [{"method": "GET", "path": path, "time": t, "ms": 0.0} for t in (11.0, 12.0, 12.3, 13.5, 13.6)]
    ops = {op: {"start": 10.0, "end": 13.0, "path": path}}
    early = bench._early_polls(polls, ops, retry_after=1.0)
    assert [p["gap_s"] for p in early] == [0.3]  # 13.6 re-reads a finished operation: not a poll


def test_union_merges_overlaps() -> None:
    assert bench._union([(5.0, 6.0), (1.0, 3.0), (2.0, 4.0), (7.0, 7.0)]) == [(1.0, 4.0), (5.0, 6.0)]
    assert bench._measure(bench._intersect([(0.0, 10.0)], [(2.0, 3.0), (9.0, 12.0)])) == pytest.approx(2.0)


def test_a_wait_on_a_vm_state_needs_one_read_per_retry_after_and_no_more() -> None:
    view = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/instanceView"
    boot = [2.0 * i for i in range(31)]  # a 60 s boot read every 2 s: 31 reads
    stop = [500.0 + 3.0 * i for i in range(4)]  # later, a separate 9 s wait for it to stop: 4 reads
    reads = [
        {
            "method": "GET",
            "path": view,
            "time": t,
            "ms": 0.0,
            "operation": "Microsoft.Compute/virtualMachines/instanceView/read",
        }
        for t in boot + stop
    ]
    arm = bench._arm({"requests": reads, "settings": {"retry_after": 1}}, 0.0, 600.0)
    # one read a second over each wait: 61 + 10, so the run's 35 reads are well under the minimum
    assert arm["minimum_parts"]["state_waits"] == 2
    assert arm["minimum_parts"]["state_polls_at_retry_after"] == 71
    assert arm["minimum"] == 71 and arm["total"] == 35 and arm["met"]
    slow = bench._arm({"requests": reads, "settings": {"retry_after": 10}}, 0.0, 600.0)
    assert slow["minimum"] == 7 + 1 and not slow["met"]  # reading every 2 s against a 10 s Retry-After wastes
