"""The fleet DAG and the image DAGs' pools, as parsed from an include folder (no Airflow run needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def include_with(tmp: Path, fleet: dict[str, object] | None, moves: dict[str, str]) -> Path:
    """The shipped definitions (some moved to another region) and, if given, a fleet.yaml."""
    shutil.copytree(ROOT / "include" / "scripts", tmp / "scripts")
    (tmp / "images").mkdir()
    for path in sorted((ROOT / "include" / "images").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if path.stem in moves:
            region = moves[path.stem]
            data["gallery"]["location"] = data["build"]["location"] = region
            data["replication"]["regions"] = [{"name": region, "replicas": 1}]
            data.get("outputs", {}).get("managed_image", {}).pop("location", None)
        (tmp / "images" / path.name).write_text(yaml.safe_dump(data))
    (tmp / "images" / "broken.yaml").write_text("name: broken\n")
    if fleet is not None:
        (tmp / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    return tmp / "images"


def test_fleet_dag_rebuilds_each_region_in_its_builds_pool_and_waits_deferred(tmp_path: Path) -> None:
    from image_factory.fleet_dag import fleet_dag

    images = include_with(tmp_path, {"defaults": {"vcpus": 8, "builds": 2}, "rebuild": {"poll_seconds": 7}},
                          {"debian12-specialized": "northeurope"})
    dag = fleet_dag(images)
    assert dag.dag_id == "fleet_rebuild" and dag.max_active_runs == 1 and dag.schedule is None
    assert sorted(t.task_id for t in dag.tasks) == ["rebuild_northeurope", "rebuild_westeurope",
                                                    "select_northeurope", "select_westeurope"]
    for region in ("westeurope", "northeurope"):
        rebuild = dag.get_task(f"rebuild_{region}")
        assert (rebuild.pool, rebuild.pool_slots) == (f"image_factory_builds_{region}", 1)
        kwargs = rebuild.partial_kwargs
        assert kwargs["wait_for_completion"] is True and kwargs["deferrable"] is True
        assert kwargs["poke_interval"] == 7 and kwargs["fail_when_dag_is_paused"] is True
        assert dag.get_task(f"select_{region}").task_id in rebuild.upstream_task_ids
    assert dag.params.get_param("images").schema["items"]["enum"] == [
        "debian12-managed", "debian12-specialized", "debian12-web", "windows2022-base"]  # broken.yaml left out


def test_image_dags_take_vcpu_slots_only_in_the_tasks_that_hold_a_vm(tmp_path: Path) -> None:
    from image_factory.dag_factory import image_dags

    images = include_with(tmp_path, {"defaults": {"vcpus": 8, "builds": 2}}, {"debian12-specialized": "northeurope"})
    dags = image_dags(images)
    holding = {"provision_vm", "wait_for_guest", "check_changes", "publish_needed", "customise", "generalize",
               "wait_for_stop", "deallocate", "smoke_test"}
    web = dags["golden_debian12-web"]
    for t in web.tasks:
        if t.task_id in holding:  # Standard_D2s_v5 build VM, Standard_B2s smoke VMs: 2 vCPUs each
            assert (t.pool, t.pool_slots, str(t.weight_rule)) == ("image_factory_vcpus_westeurope", 2, "upstream")
        else:
            assert t.pool == "default_pool", t.task_id
    windows = dags["golden_windows2022-base"]
    assert windows.get_task("customise").pool_slots == 4  # Standard_D4s_v5
    assert dags["golden_debian12-specialized"].get_task("provision_vm").pool == "image_factory_vcpus_northeurope"
    assert {t.pool for t in dags["golden_broken"].tasks} == {"default_pool"}


def test_without_fleet_yaml_no_task_takes_a_factory_pool(tmp_path: Path) -> None:
    from image_factory.dag_factory import image_dags
    from image_factory.fleet_dag import fleet_dag

    images = include_with(tmp_path, None, {})
    assert {t.pool for d in image_dags(images).values() for t in d.tasks} == {"default_pool"}
    assert {t.pool for t in fleet_dag(images).tasks} == {"default_pool"}


def test_a_task_process_builds_only_the_dag_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID, _AIRFLOW_PARSING_CONTEXT_TASK_ID

    from image_factory.dag_factory import image_dags

    images = include_with(tmp_path, {"defaults": {"vcpus": 8, "builds": 2}}, {})
    shipped = len(list((ROOT / "include" / "images").glob("*.yaml")))
    assert len(image_dags(images)) == shipped + 1  # the dag-processor: every definition, the broken one too
    # what the task runner sets while it parses the file for one task (its own context manager leaves the
    # variables set when they were unset before, so the test sets them through monkeypatch)
    monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, "golden_debian12-web")
    monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_TASK_ID, "customise")
    assert list(image_dags(images)) == ["golden_debian12-web"]
