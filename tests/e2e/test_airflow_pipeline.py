"""The Linux generalized DAG under real Airflow processes, on simulated guests.

api-server, scheduler (LocalExecutor), dag-processor and triggerer run as separate processes
(devstack.airflow.AirflowStack), the run is triggered through the REST API, and the deferrable
tasks wait in the triggerer. Then the worker is killed in the middle of provisioning and of
publishing: Airflow's retry must find what the killed try started, so the build still makes
exactly one VM and one version and leaves nothing behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_factory.published_dag import PUBLISHED_DAG_ID
from tests.e2e.airflow_pipeline import (
    DAG_ID,
    IMAGE,
    Pipeline,
    kill_task_process,
    promoted,
    running_pipeline,
    versions_of_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.guests("simulated"), pytest.mark.timeout(900)]

RUN_TIMEOUT = 420.0
# the waits that take real time (guest boot, replication): these must happen in the triggerer, not a worker
DEFERRED_WAITS = [("wait_for_guest", -1), ("replicate", -1), ("smoke_test", 0), ("smoke_test", 1)]
# Azure durations scaled down (a 45 s boot takes 4.5 s): short enough for a test, long enough that a wait
# is not over before it starts, so the deferrable tasks do defer
TIME_FACTOR = 0.1
KILL_WINDOW_MS = 8000  # the killed request stays inside the emulator this long: shorter than the retry delay (15 s)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("airflow-pipeline")
    lineage = {  # the lineage store and OpenLineage's events, where the test can read them
        "IMAGE_FACTORY_LINEAGE_URL": f"sqlite:///{tmp / 'lineage.db'}",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(tmp / "openlineage.jsonl"),
                                                       "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "golden-image-factory-e2e",
    }
    with running_pipeline(tmp, time_factor=TIME_FACTOR, azure_env={"LOCAL_AZURE_LINUX_RUNTIME": "simulated"},
                          airflow_env=lineage) as p:
        yield p


def assert_one_promoted_version_and_no_leftovers(p: Pipeline, run_id: str) -> dict[str, Any]:
    summary = p.report(run_id)
    assert summary["run_id"] == run_id and summary["version"]
    mine = versions_of_run(p.emu, run_id)
    assert [v.name for v in mine] == [summary["version"]], mine
    assert mine[0].provisioning_state == "Succeeded"
    assert promoted(p.emu, summary["version"]), "the version is still excluded from latest"
    assert p.leftovers(run_id) == []
    return summary


def test_golden_image_run_through_the_rest_api(pipeline: Pipeline) -> None:
    pipeline.stack.api("PATCH", f"dags/{PUBLISHED_DAG_ID}", pipeline.token, json={"is_paused": False}).raise_for_status()
    run_id = pipeline.trigger("e2e: REST API run")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    summary = assert_one_promoted_version_and_no_leftovers(pipeline, run_id)
    assert summary["version_id"].endswith(f"/versions/{summary['version']}")
    assert set(summary["regions"]) == {"westeurope", "eastus"}
    assert all(r["passed"] for r in summary["smoke"].values()) and set(summary["smoke"]) == {"westeurope", "eastus"}
    states = pipeline.states(run_id)
    assert set(states.values()) == {"success"}, states
    for task_id, map_index in DEFERRED_WAITS:
        fired = pipeline.fired_triggers(run_id, task_id, map_index)
        assert fired and all("'status': 'success'" in event for event in fired), (task_id, map_index, fired)
    print(f"\n{DAG_ID} {run_id}: {pipeline.run_seconds(run_id):.1f} s, version {summary['version']}")
    assert_lineage_in_all_three_places(pipeline, run_id, summary)


def assert_lineage_in_all_three_places(p: Pipeline, run_id: str, summary: dict[str, Any]) -> None:
    """The store's record (trigger seen by the scheduler's listener), the version's tags, OpenLineage's
    events and the Assets all describe the same version."""
    from image_factory.lineage import record
    from image_factory.lineage.store import LineageStore
    from tests.e2e.airflow_pipeline import gallery_hook

    store = LineageStore(p.stack.extra_env["IMAGE_FACTORY_LINEAGE_URL"])
    rec = store.get(summary["version_id"])
    assert rec["status"] == "published" and rec["run"]["run_id"] == run_id
    assert (rec["run"]["trigger"], rec["run"]["triggered_by"]) == ("api", "admin")  # a REST API call, no Referer
    assert rec["packages"] == sorted(summary["packages"]) and rec["source"]["version"] == summary["source"]["version"]
    with gallery_hook(p.emu) as hook:
        tags = hook.version_details("rg-golden-images", "gal_golden", "debian12-web", summary["version"])["tags"]
    assert record.agreement(rec, tags) == []

    events = [json.loads(line) for line in
              Path(json.loads(p.stack.extra_env["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"]).read_text().splitlines()]
    done = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{DAG_ID}.record_lineage"
            and e["run"]["facets"].get("goldenImageBuild", {}).get("version") == summary["version"]]
    assert len(done) == 1, [e["job"]["name"] for e in events]
    event = done[0]
    src = summary["source"]
    assert [(i["namespace"], i["name"]) for i in event["inputs"]] == [
        ("azure-marketplace", f"{src['publisher']}:{src['offer']}:{src['sku']}:{src['version']}")]
    assert [o["name"] for o in event["outputs"]] == [f"rg-golden-images/gal_golden/debian12-web/{summary['version']}"]
    assert event["outputs"][0]["facets"]["goldenImageVersion"]["smoke"] == rec["smoke"]
    build = event["run"]["facets"]["goldenImageBuild"]
    assert build["packageManifest"] == tags[record.TAG_PACKAGES] and build["trigger"] == "api"

    # first the consumer's run: Airflow 3.3's assets/events answers 500 while a DAG run an event created has no
    # start date yet (AssetEventResponse.created_dagruns[].start_date is not optional), so list events once it ran
    assert_published_dag_ran(p, summary)
    asset_events = p.stack.api("GET", "assets/events", p.token, params={"limit": 100}).json()["asset_events"]
    mine = [e for e in asset_events if (e.get("extra") or {}).get("run_id") == run_id]
    assert sorted(e["uri"].rstrip("/") for e in mine) == sorted(["golden-image://debian12-web",  # Airflow adds "/"
                                                      f"azurecompute://{summary['version_id'].split('/')[2]}/"
                                                      f"rg-golden-images/gal_golden/debian12-web/{summary['version']}"])
    assert all(e["extra"]["version"] == summary["version"] for e in mine)


def assert_published_dag_ran(p: Pipeline, summary: dict[str, Any]) -> None:
    """The DAG scheduled on the images' Assets ran for this version and announced its lineage."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = p.stack.api("GET", f"dags/{PUBLISHED_DAG_ID}/dagRuns", p.token).json()["dag_runs"]
        for run in runs:
            if run["run_type"] == "asset_triggered" and run["state"] == "success":
                announced = p.stack.xcom(PUBLISHED_DAG_ID, run["dag_run_id"], "announce", p.token)
                if any(a["version"] == summary["version"] for a in announced):
                    assert all(a["status"] == "published" for a in announced), announced
                    return
        time.sleep(2)
    raise AssertionError(f"{PUBLISHED_DAG_ID} did not run for version {summary['version']}: {runs}")


def test_worker_killed_while_provisioning(pipeline: Pipeline) -> None:
    since = pipeline.request_seq()
    fault = pipeline.emu.add_fault(
        match="PUT */virtualMachines/vm-build-*", kind="latency", latency_ms=KILL_WINDOW_MS, count=1
    )
    run_id = pipeline.trigger("e2e: worker killed while provisioning")
    pipeline.wait_fault_taken(fault, run_id, timeout=120)
    kill_task_process(pipeline, run_id, "provision_vm")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    killed = pipeline.task(run_id, "provision_vm")
    assert killed["try_number"] == 2, killed
    assert pipeline.stack.xcom(DAG_ID, run_id, "provision_vm", pipeline.token)["created"] is False, (
        "the retry did not find the VM the killed try had asked for"
    )
    assert len(pipeline.puts("/virtualMachines/vm-build-", since)) == 1
    assert_one_promoted_version_and_no_leftovers(pipeline, run_id)
    print(f"\nkilled in provision_vm: run {pipeline.run_seconds(run_id):.1f} s")


def test_worker_killed_while_publishing(pipeline: Pipeline) -> None:
    since = pipeline.request_seq()
    fault = pipeline.emu.add_fault(
        match="PUT */galleries/*/images/*/versions/*", kind="latency", latency_ms=KILL_WINDOW_MS, count=1
    )
    run_id = pipeline.trigger("e2e: worker killed while publishing")
    pipeline.wait_fault_taken(fault, run_id, timeout=RUN_TIMEOUT)
    kill_task_process(pipeline, run_id, "capture")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    assert pipeline.task(run_id, "capture")["try_number"] == 2
    summary = assert_one_promoted_version_and_no_leftovers(pipeline, run_id)
    version_puts = pipeline.puts(f"/images/{IMAGE}/versions/", since)
    assert [path.rsplit("/", 1)[-1] for path in version_puts] == [summary["version"]], version_puts
    print(f"\nkilled in capture: run {pipeline.run_seconds(run_id):.1f} s")


def test_rest_api_refuses_bad_conf_with_400_and_no_token_with_401(pipeline: Pipeline) -> None:
    import requests

    url = f"{pipeline.stack.url}/api/v2/dags/{DAG_ID}/dagRuns"
    auth = {"Authorization": f"Bearer {pipeline.token}"}
    runs_before = pipeline.stack.api("GET", f"dags/{DAG_ID}/dagRuns", pipeline.token).json()["total_entries"]
    since = pipeline.request_seq()
    for conf, words in [({"colour": "blue"}, "conf: unknown key(s) colour"),
                        ({"regions": ["westeurope", "marsnorth"]}, "conf.regions: unknown region(s) marsnorth"),
                        ({"regions": ["eastus"]}, "conf.regions: must include the gallery's location 'westeurope'"),
                        ({"replicas": 0}, "replicas")]:
        resp = requests.post(url, json={"logical_date": None, "conf": conf}, headers=auth, timeout=30)
        assert resp.status_code == 400 and words in resp.text, (conf, resp.status_code, resp.text)
    resp = requests.post(url, json={"logical_date": None, "conf": {}}, timeout=30)
    assert resp.status_code == 401
    runs_after = pipeline.stack.api("GET", f"dags/{DAG_ID}/dagRuns", pipeline.token).json()["total_entries"]
    assert runs_after == runs_before, "a refused trigger must not create a run"
    assert pipeline.puts("/", since) == [], "a refused trigger must not write to Azure"
