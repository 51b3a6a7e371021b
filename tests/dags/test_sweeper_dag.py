"""The sweeper removes exactly the groups of finished runs and of unknown runs past their expiry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from image_factory.dag_factory import dag_id_for
from image_factory.hooks.resources import ResourceGroupHook
from image_factory.hooks.storage import StorageHook
from image_factory.naming import PROJECT_TAG, RunNames, run_blob_metadata, run_tags
from image_factory.operators.base import DEFAULT_CONN_ID
from tests.dags.conftest import task_states, xcom
from tests.localazure import LocalAzure

ROOT = Path(__file__).resolve().parents[2]
IMAGE, DAG_ID = "debian12-web", "golden_debian12-web"
IMPORTED = "debian12-imported"
TTL = timedelta(hours=12)


@contextmanager
def runs_of(dag_id: str) -> Iterator[dict[str, str]]:
    """Two runs of an image DAG in the metadata DB, one running and one failed; removed afterwards
    (a running run left behind would make other tests see a build in progress)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now, tag = datetime.now(UTC), uuid.uuid4().hex[:6]
    runs = {"running": f"manual__{now.isoformat()}-sweep-live-{tag}",
            "failed": f"manual__{now.isoformat()}-sweep-dead-{tag}"}
    with create_session() as session:
        for state, run_id in runs.items():
            session.add(DagRun(dag_id=dag_id, run_id=run_id, run_type=DagRunType.MANUAL, state=DagRunState(state),
                               run_after=now, start_date=now, triggered_by=DagRunTriggeredByType.TEST))
    try:
        yield runs
    finally:
        with create_session() as session:
            session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id.in_(runs.values())).delete()


@pytest.fixture
def golden_runs(factory_env: LocalAzure) -> Iterator[dict[str, str]]:
    with runs_of(DAG_ID) as runs:
        yield runs


@pytest.fixture
def import_runs(factory_env: LocalAzure) -> Iterator[dict[str, str]]:
    with runs_of(dag_id_for(IMPORTED)) as runs:
        yield runs


def test_sweeper_deletes_only_finished_and_expired_unknown_runs_groups(golden_runs: dict[str, str]) -> None:
    from image_factory.sweeper_dag import sweeper_dag

    hook = ResourceGroupHook(DEFAULT_CONN_ID)
    now, tag = datetime.now(UTC), uuid.uuid4().hex[:6]
    unknown_old, unknown_new = f"manual__elsewhere-old-{tag}", f"manual__elsewhere-new-{tag}"
    made = {  # what → (run id, created)
        "live": (golden_runs["running"], now - TTL - timedelta(hours=1)),  # alive, though past its expiry
        "finished": (golden_runs["failed"], now - timedelta(minutes=30)),  # finished, not yet expired
        "unknown_expired": (unknown_old, now - TTL - timedelta(minutes=30)),
        "unknown_fresh": (unknown_new, now - timedelta(hours=1)),
    }
    groups = {what: RunNames.for_run(IMAGE, DAG_ID, run_id).resource_group for what, (run_id, _) in made.items()}
    groups["gallery"], groups["odd"] = f"rg-golden-sweep-{tag}", f"rg-imgf-odd-{tag}"
    try:
        for what, (run_id, created) in made.items():
            hook.ensure_resource_group(groups[what], "westeurope", run_tags(IMAGE, run_id, created, TTL))
        hook.ensure_resource_group(groups["gallery"], "westeurope", {"project": PROJECT_TAG, "image": IMAGE})
        odd_tags = {**run_tags(IMAGE, unknown_old, now - 2 * TTL, TTL), "expiry": "soon"}
        hook.ensure_resource_group(groups["odd"], "westeurope", odd_tags)

        run = sweeper_dag().test()

        states = task_states(run)
        assert (run.state, states["find"], states["sweep"], states["report"]) == ("success",) * 4, states
        exists = {what: hook.resource_group_exists(name) for what, name in groups.items()}
        assert exists == {"live": True, "finished": False, "unknown_expired": False, "unknown_fresh": True,
                          "gallery": True, "odd": True}
        report = xcom(run, "report")
        removed = {r["group"]: r for r in report["removed"]}
        kept = {r["group"]: r["reason"] for r in report["kept"]}
        assert report["not_removed"] == []
        assert removed[groups["finished"]] == {"group": groups["finished"], "run_id": golden_runs["failed"],
                                               "reason": "run failed (finished)"}
        assert removed[groups["unknown_expired"]]["reason"] == "run not known to this Airflow; expired 30 min ago"
        assert kept[groups["live"]] == "run running (alive); past its expiry by 1 h 00 min"
        assert re.fullmatch(r"run not known to this Airflow; expires in 10 h 5\d min", kept[groups["unknown_fresh"]])
        assert kept[groups["odd"]] == "unrecognised: tag expiry: 'soon' is not an ISO 8601 time"
        mine = set(groups.values())
        assert {g for g in removed if g in mine} == {groups["finished"], groups["unknown_expired"]}
        assert groups["gallery"] not in {**removed, **kept}  # never a candidate
        assert {groups["finished"], groups["unknown_expired"]} <= swept_labels(run)  # one sweep task per group

        again = sweeper_dag().test()  # nothing new to delete: the same groups stay, nothing fails
        assert again.state == "success"
        assert not {r["group"] for r in xcom(again, "report")["removed"]} & mine
        assert all(hook.resource_group_exists(groups[w]) for w in ("live", "unknown_fresh", "gallery", "odd"))
    finally:
        for name in groups.values():
            hook.begin_delete_resource_group(name)


def test_staging_blobs_of_finished_and_expired_unknown_runs_are_deleted(import_runs: dict[str, str]) -> None:
    """An import's blob outside its run's group: judged by the run tags in its metadata, like the groups."""
    from image_factory.pipeline.build import load_definition
    from image_factory.plan import staging_of
    from image_factory.sweeper_dag import sweeper_dag

    storage, groups = StorageHook(DEFAULT_CONN_ID), ResourceGroupHook(DEFAULT_CONN_ID)
    definition = load_definition(IMPORTED)
    st = staging_of(definition, storage.subscription_id, "0.0.1")
    groups.ensure_resource_group(st["resource_group"], definition.build_location, {"project": PROJECT_TAG})
    storage.ensure_account(st["resource_group"], st["storage_account"], location=definition.build_location,
                           tags={"project": PROJECT_TAG})
    storage.ensure_container(st["resource_group"], st["storage_account"], st["container"])
    now, tag = datetime.now(UTC), uuid.uuid4().hex[:6]
    made = {  # what → (blob, run id, created); a run's tags as its upload writes them
        "finished": (f"{IMPORTED}/sweep-{tag}-dead.vhd", import_runs["failed"], now),
        "live": (f"{IMPORTED}/sweep-{tag}-live.vhd", import_runs["running"], now - TTL - timedelta(hours=1)),
        "unknown_expired": (f"{IMPORTED}/sweep-{tag}-old.vhd", f"manual__elsewhere-old-{tag}", now - 2 * TTL),
        "unknown_fresh": (f"{IMPORTED}/sweep-{tag}-new.vhd", f"manual__elsewhere-new-{tag}", now),
        "other_prefix": (f"not-an-image-{tag}/dead.vhd", import_runs["failed"], now),  # no image's blob
    }
    made["unlabelled"] = (f"{IMPORTED}/sweep-{tag}-theirs.vhd", "", now)
    location = (st["resource_group"], st["storage_account"], st["container"])
    try:
        for blob, run_id, created in made.values():
            meta = run_blob_metadata(run_tags(IMPORTED, run_id, created, TTL)) if run_id else {"owner": "someone"}
            storage.blob_client(*location, blob).upload_blob(b"vhd", metadata=meta)

        run = sweeper_dag().test()

        states = task_states(run)
        assert run.state == "success" and states["find_staging_blobs"] == states["sweep_staging_blobs"] == "success"
        exists = {what: storage.blob_etag(*location, blob) is not None for what, (blob, _, _) in made.items()}
        assert exists == {"finished": False, "live": True, "unknown_expired": False, "unknown_fresh": True,
                          "other_prefix": True, "unlabelled": True}
        names = {what: f"{st['storage_account']}/{st['container']}/{blob}" for what, (blob, _, _) in made.items()}
        blobs = xcom(run, "report")["staging_blobs"]
        removed = {r["blob"]: r["reason"] for r in blobs["removed"]}
        kept = {r["blob"]: r["reason"] for r in blobs["kept"]}
        assert blobs["not_removed"] == []
        assert removed[names["finished"]] == "run failed (finished)"
        assert removed[names["unknown_expired"]] == "run not known to this Airflow; expired 12 h 00 min ago"
        assert kept[names["live"]] == "run running (alive); past its expiry by 1 h 00 min"
        assert re.fullmatch(r"run not known to this Airflow; expires in 11 h 5\d min", kept[names["unknown_fresh"]])
        assert not {names["other_prefix"], names["unlabelled"]} & {*removed, *kept}  # never candidates
        assert xcom(run, "sweep_staging_blobs") == {"deleted": sorted([names["finished"], names["unknown_expired"]]),
                                                    "gone": [], "changed": []}
    finally:
        for blob, _, _ in made.values():
            storage.delete_blob(*location, blob)


def test_a_failed_blob_listing_still_sweeps_the_groups_and_fails_the_run(
        golden_runs: dict[str, str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    from image_factory.sweeper_dag import sweeper_dag

    hook = ResourceGroupHook(DEFAULT_CONN_ID)
    group = RunNames.for_run(IMAGE, DAG_ID, golden_runs["failed"]).resource_group
    hook.ensure_resource_group(group, "westeurope", run_tags(IMAGE, golden_runs["failed"], datetime.now(UTC), TTL))

    def refused(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise PermissionError("listKeys: the connection may not list the staging account's keys")

    monkeypatch.setattr(StorageHook, "list_blobs", refused)
    try:
        run = sweeper_dag().test()
        states = task_states(run)
        assert (run.state, states["find_staging_blobs"], states["sweep_staging_blobs"]) == (
            "failed", "failed", "upstream_failed"), states
        assert states["sweep"] == "success" and not hook.resource_group_exists(group)  # the groups were swept
        assert states["report"] == "failed"
        out, err = capfd.readouterr()
        assert "listKeys: the connection may not list" in out + err
        assert "find_staging_blobs recorded no verdicts (it failed): no staging blob was judged" in out + err
        assert re.search(rf"removed +{group} ", caplog.text), "the groups' table was not logged"
    finally:
        hook.begin_delete_resource_group(group)


def swept_labels(run: Any) -> set[str]:
    """The sweep task instances' names in the UI (their rendered map index)."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.rendered_map_index for ti in session.query(TaskInstance).filter(
            TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id, TaskInstance.task_id == "sweep")}


def test_deleting_a_group_that_is_already_gone_is_done(factory_env: LocalAzure) -> None:
    from image_factory.operators.resources import DeleteResourceGroupOperator

    op = DeleteResourceGroupOperator(task_id="sweep", resource_group=f"rg-imgf-gone-{uuid.uuid4().hex[:6]}")
    assert op.execute({}) == {"resource_group": op.resource_group, "deleted": False}  # type: ignore[arg-type]


def test_a_deletion_that_times_out_fails_the_sweep_task() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from image_factory.operators.resources import DeleteResourceGroupOperator

    op = DeleteResourceGroupOperator(task_id="sweep", resource_group="rg-imgf-slow")
    event = {"status": "error", "message": "Timed out after 1800 s waiting for resource group rg-imgf-slow"}
    with pytest.raises(AirflowFailException, match="deletion of rg-imgf-slow: Timed out after 1800 s"):
        op.execute_complete({}, event)  # type: ignore[arg-type]
    done = {"status": "success", "resource_group": "rg-imgf-slow", "seconds": 4.2}
    assert op.execute_complete({}, done) == {"resource_group": "rg-imgf-slow", "deleted": True}  # type: ignore[arg-type]


def test_the_dag_file_builds_the_hourly_sweeper() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "sweep_build_resources.py"))
    assert bag.import_errors == {} and bag.dag_ids == ["sweep_build_resources"]
    dag = bag.dags["sweep_build_resources"]
    assert (dag.schedule, dag.catchup, dag.max_active_runs) == ("@hourly", False, 1)
    assert set(dag.tags) == {"golden-image", "maintenance"}
    assert dag.get_task("find").task_id in dag.get_task("sweep").upstream_task_ids
    assert dag.get_task("sweep").task_id in dag.get_task("report").upstream_task_ids
    assert dag.get_task("find_staging_blobs").task_id in dag.get_task("sweep_staging_blobs").upstream_task_ids
    assert dag.get_task("sweep_staging_blobs").task_id in dag.get_task("report").upstream_task_ids
    sweep = dag.get_task("sweep").operator_class
    assert sweep.__name__ == "DeleteResourceGroupOperator" and hasattr(sweep, "execute_complete")  # it defers


@pytest.mark.parametrize("status", [404, 500])
def test_a_worker_reads_the_api_servers_404_as_an_unknown_run(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    """On a worker the supervisor relays the Execution API's answer as an AirflowRuntimeError (dag.test() does not)."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from image_factory.sweeper_dag import run_state

    def answer(dag_id: str, run_id: str) -> str:
        raise AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR,
                                                detail={"status_code": status, "message": "from the API server"}))

    monkeypatch.setattr(RuntimeTaskInstance, "get_dagrun_state", staticmethod(answer))
    if status == 404:
        assert run_state(DAG_ID, "manual__gone") is None
    else:  # any other failure is not "unknown": the task fails (and is retried) rather than guess
        with pytest.raises(AirflowRuntimeError, match="from the API server"):
            run_state(DAG_ID, "manual__gone")
