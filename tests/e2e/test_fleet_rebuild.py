"""A fleet rebuild of 20 image definitions under real Airflow processes, on simulated guests, within
the local Azure's regional vCPU quotas.

Two regions, each with a small vCPU quota in the local Azure and the pools sized to match (a
quota of 8 vCPUs holds two 4-vCPU build VMs, or four 2-vCPU ones). The fleet DAG starts every image
at once; the builds pool lets a few run per region and the vCPU pool queues their VM tasks. Every
image must publish, the local Azure must never have held more vCPUs than the quota, no region may
have run more builds at once than its builds pool, and tasks must really have queued for the pools.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import fleet as fleet_cli
from tests.e2e.fleet import (
    Fleet,
    PoolWatch,
    RegionPlan,
    most_at_once,
    running_fleet,
    runs,
    task_instances,
    ts,
    wait_for_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.guests("simulated"), pytest.mark.timeout(3000)]

PLAN = {"westeurope": RegionPlan(images=14, vcpus=8, builds=4), "northeurope": RegionPlan(images=6, vcpus=4, builds=2)}
FLEET_TIMEOUT = 2400.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("fleet"), PLAN) as f:
        yield f


def test_the_whole_fleet_rebuilds_within_the_quotas_and_pools(fleet: Fleet) -> None:
    assert len(fleet.images) == 20
    stack = fleet.stack
    with PoolWatch(stack, fleet.token, fleet.emu) as watch:
        run_id = fleet_cli.rebuild(stack, fleet.token, "e2e: fleet rebuild")
        fleet_run = wait_for_run(stack, "fleet_rebuild", run_id, fleet.renew_token(), FLEET_TIMEOUT)
    token = fleet.renew_token()
    rebuilds = [t for t in task_instances(stack, "fleet_rebuild", run_id, token) if t["task_id"].startswith("rebuild_")]
    assert fleet_run["state"] == "success", {t["rendered_map_index"] or t["map_index"]: t["state"] for t in rebuilds}

    image_runs = {dag_id: runs(stack, dag_id, token) for dag_id in fleet.dag_ids}
    for dag_id, found in image_runs.items():  # one run each, started by the fleet run, published
        assert [r["state"] for r in found] == ["success"], (dag_id, found)
        assert found[0]["conf"]["reason"] == f"e2e: fleet rebuild (fleet run {run_id})"

    quotas = {q["location"]: q for q in fleet.emu.ops("GET", "quotas")["value"]}
    for region, rp in PLAN.items():
        high = quotas[region]["highWater"]["cores"]
        assert quotas[region]["limits"]["cores"] == rp.vcpus
        assert high <= rp.vcpus, f"{region} held {high} vCPUs at once, quota {rp.vcpus}"
        assert high >= min(rp.vcpus, 6), f"{region}: at most {high} vCPUs at once: the builds did not overlap"

        # builds at once per region: the image runs' own start -> end, never more than the builds pool
        mine = [r for dag_id, found in image_runs.items() for r in found
                if fleet.images[dag_id.removeprefix("golden_")] == region]
        builds = most_at_once((ts(r["start_date"]) or 0.0, ts(r["end_date"]) or 0.0, 1) for r in mine)
        assert 2 <= builds.most <= rp.builds, (region, builds.most)

        # the VM tasks of the image runs took the region's vCPU pool
        tis = [t for r in mine for t in task_instances(stack, r["dag_id"], r["dag_run_id"], token)]
        vm_tasks = {t["task_id"] for t in tis if t["pool"] == f"image_factory_vcpus_{region}"}
        assert {"provision_vm", "wait_for_guest", "customise", "deallocate", "smoke_test"} <= vm_tasks

        for pool, size in ((f"image_factory_builds_{region}", rp.builds), (f"image_factory_vcpus_{region}", rp.vcpus)):
            most = watch.most[pool]
            assert watch.slots[pool] == size and 0 < most["occupied_slots"] <= size, (pool, most)
        # images queued for a build slot: the fleet's tasks waited while the builds pool was full
        assert watch.starved[f"image_factory_builds_{region}"] > 0, watch.starved
    # VM tasks queued for vCPUs: waiting tasks asked for more slots than the pool had open
    assert sum(watch.starved[f"image_factory_vcpus_{r}"] for r in PLAN) > 0, watch.starved

    waiting = fleet_cli.status(stack, token, Path(stack.env()["IMAGE_FACTORY_INCLUDE"]))
    assert waiting["missing_pools"] == [] and waiting["waiting"] == []
    assert {i["run"]["state"] for i in waiting["images"]} == {"success"}
    wall = (ts(fleet_run["end_date"]) or 0.0) - (ts(fleet_run["start_date"]) or 0.0)
    print(f"\nfleet of {len(fleet.images)} rebuilt in {wall:.0f} s; quota high-water "
          + ", ".join(f"{r} {quotas[r]['highWater']['cores']}/{rp.vcpus}" for r, rp in PLAN.items())
          + f"; VM writes refused for the quota (then waited for): {watch.refusals}; pools: "
          + ", ".join(f"{n} max scheduled {m['scheduled_slots']}" for n, m in sorted(watch.most.items())))
