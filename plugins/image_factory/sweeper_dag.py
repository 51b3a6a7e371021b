"""The sweeper DAG: delete the temporary resource groups and staging blobs that dead or failed runs left.

Every hour `find` lists the groups tagged `project=golden-image-factory` with a `run-id`, asks this
Airflow the state of each group's run (`golden_<image>`, the run id) and applies the rule in
`plugins/image_factory/sweeper.py`: keep what a queued or running run uses, delete what a finished
run left, and delete a group of a run this Airflow does not know only once its `expiry` tag has
passed. `sweep` deletes each such group (one mapped task per group, waiting deferred until ARM says
it is gone). An import's staging blob lies outside its run's group, in a storage account that stays:
`find_staging_blobs` lists the import definitions' staging containers and judges each blob by the
run tags its upload wrote into its metadata, by the same rule; `sweep_staging_blobs` deletes a blob
only as it was when judged (its ETag), so one a new run has taken up since stays. `report` logs a
table of what was removed, what was kept and why, and fails the run if a deletion did not finish.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, TriggerRule, task

from image_factory.dag_factory import START, dag_id_for
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient

SWEEP_DAG_ID = "sweep_build_resources"
NOT_FOUND = 404

log = logging.getLogger(__name__)


def run_state(dag_id: str, run_id: str) -> str | None:
    """The run's state as this Airflow records it, or None when it has no such run (or no such DAG).

    The Execution API answers 404 for an unknown run: a worker's supervisor relays it as an
    AirflowRuntimeError carrying the status code, ``dag.test()``'s in-process supervisor lets the
    client's HTTP error through.
    """
    import httpx
    from airflow.sdk.exceptions import AirflowRuntimeError
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    try:
        state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    except AirflowRuntimeError as exc:
        if (exc.error.detail or {}).get("status_code") == NOT_FOUND:
            return None
        raise
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == NOT_FOUND:
            return None
        raise
    return str(getattr(state, "value", state))


def blob_name(place: dict[str, str]) -> str:
    """How the verdicts and the report name a staging blob: account/container/blob."""
    return f"{place['storage_account']}/{place['container']}/{place['blob']}"


def import_definitions(folder: Path | None) -> list[Any]:
    """The valid image definitions that import a disk (a broken file's own DAG says why it is broken)."""
    from image_factory.definitions import load_valid
    from image_factory.pipeline.build import include_dir

    return [d for d in load_valid(folder or include_dir() / "images") if d.source.disk]


def groups_outcome(azure_conn_id: str, verdicts: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """The groups' verdicts against what ARM still has: removed, not removed, kept."""
    from image_factory.hooks.resources import ResourceGroupHook
    from image_factory.sweeper import DELETE, outcome

    hook = ResourceGroupHook(azure_conn_id)
    left = [v["name"] for v in verdicts if v["action"] == DELETE and hook.resource_group_exists(v["name"])]
    return outcome(verdicts, left)


def blobs_outcome(azure_conn_id: str, verdicts: list[dict[str, Any]],
                  doomed: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The blobs' verdicts against what storage still has: a doomed blob still there as judged was not
    removed; one written since was taken up again, and kept."""
    from image_factory.hooks.storage import StorageHook
    from image_factory.sweeper import outcome

    storage = StorageHook(azure_conn_id)
    left: list[str] = []
    changed: list[str] = []
    for place in doomed:
        etag = storage.blob_etag(place["resource_group"], place["storage_account"], place["container"], place["blob"])
        if etag is not None:
            (left if etag == place["etag"] else changed).append(blob_name(place))
    return outcome(verdicts, left, key="blob", changed=changed)


def sweeper_dag(*, azure_conn_id: str = DEFAULT_CONN_ID, schedule: str = "@hourly",
                images: Path | None = None) -> DAG:
    """``images``: the definitions folder whose imports' staging containers are swept (include/images)."""
    from image_factory.operators.resources import DeleteResourceGroupOperator

    with DAG(
        dag_id=SWEEP_DAG_ID, schedule=schedule, start_date=START, catchup=False, max_active_runs=1,
        tags=["golden-image", "maintenance"], doc_md=__doc__,
        default_args={"owner": "platform", "retries": 2},
    ) as dag:

        @task(task_id="find")
        def find(**context: Any) -> list[str]:
            """The groups to delete (what sweep maps over); every verdict goes to the XCom key ``verdicts``."""
            from datetime import UTC, datetime

            from image_factory.hooks.resources import ResourceGroupHook
            from image_factory.naming import PROJECT_TAG, TAG_PROJECT
            from image_factory.sweeper import DELETE, decide

            with retry_only_transient("list the build resource groups"):
                groups = ResourceGroupHook(azure_conn_id).list_resource_groups(TAG_PROJECT, PROJECT_TAG)
            verdicts = decide(groups, datetime.now(UTC), lambda image, run_id: run_state(dag_id_for(image), run_id))
            for v in verdicts:
                (log.warning if v.unrecognised else log.info)("%s: %s (%s)", v.name, v.action, v.reason)
            doomed = [v.name for v in verdicts if v.action == DELETE]
            log.info("%d build resource group(s) found, %d to delete", len(verdicts), len(doomed))
            context["ti"].xcom_push(key="verdicts", value=[v.as_dict() for v in verdicts])
            return doomed

        found = find()
        sweep = DeleteResourceGroupOperator.partial(
            task_id="sweep", azure_conn_id=azure_conn_id, map_index_template="{{ task.resource_group }}",
        ).expand(resource_group=found)

        @task(task_id="find_staging_blobs")
        def find_staging_blobs(**context: Any) -> list[dict[str, str]]:
            """The staging blobs to delete, each with the ETag it was judged at; every verdict goes to ``verdicts``."""
            from datetime import UTC, datetime

            from image_factory.hooks.storage import StorageHook
            from image_factory.plan import staging_containers
            from image_factory.sweeper import DELETE, decide_blobs

            storage = StorageHook(azure_conn_id)
            places: dict[str, dict[str, str]] = {}
            listed = []
            with retry_only_transient("list the staging blobs"):
                for where in staging_containers(import_definitions(images), storage.subscription_id):
                    container = {k: v for k, v in where.items() if k != "prefix"}
                    for blob in storage.list_blobs(where["resource_group"], where["storage_account"],
                                                   where["container"], where["prefix"]):
                        place = {**container, "blob": blob["name"], "etag": blob["etag"]}
                        places[blob_name(place)] = place
                        listed.append({"name": blob_name(place), "metadata": blob["metadata"]})
            verdicts = decide_blobs(listed, datetime.now(UTC),
                                    lambda image, run_id: run_state(dag_id_for(image), run_id))
            for v in verdicts:
                (log.warning if v.unrecognised else log.info)("%s: %s (%s)", v.name, v.action, v.reason)
            log.info("%d staging blob(s) of runs found (%d blobs listed), %d to delete", len(verdicts),
                     len(listed), sum(v.action == DELETE for v in verdicts))
            context["ti"].xcom_push(key="verdicts", value=[v.as_dict() for v in verdicts])
            return [places[v.name] for v in verdicts if v.action == DELETE]

        @task(task_id="sweep_staging_blobs")
        def sweep_staging_blobs(doomed: Any) -> dict[str, list[str]]:
            """Delete each blob as it was judged: one written since (a run resumed it) stays; one gone is done."""
            from azure.core.exceptions import ResourceModifiedError

            from image_factory.hooks.storage import StorageHook

            storage = StorageHook(azure_conn_id)
            done: dict[str, list[str]] = {"deleted": [], "gone": [], "changed": []}
            for place in doomed:
                name = blob_name(place)
                with retry_only_transient(f"delete the staging blob {name}"):
                    try:
                        deleted = storage.delete_blob(place["resource_group"], place["storage_account"],
                                                      place["container"], place["blob"], etag=place["etag"])
                    except ResourceModifiedError:
                        log.info("%s: written since it was judged (a run took it up): kept", name)
                        done["changed"].append(name)
                        continue
                log.info("%s: %s", name, "deleted" if deleted else "already gone")
                done["deleted" if deleted else "gone"].append(name)
            return done

        @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
        def report(**context: Any) -> dict[str, Any]:
            """Runs whatever the sweeps did (nothing to do, a deletion failed); removed is what Azure no longer has.

            What could be judged is reported even when the other half failed; the run fails then."""
            from airflow.sdk.exceptions import AirflowFailException

            from image_factory.sweeper import table

            ti = context["ti"]
            verdicts = ti.xcom_pull(task_ids="find", key="verdicts")
            blob_verdicts = ti.xcom_pull(task_ids="find_staging_blobs", key="verdicts")
            result: dict[str, Any] = {}
            problems = []
            with retry_only_transient("check what was swept"):
                if verdicts is None:
                    problems.append("find recorded no verdicts (it failed): no resource group was judged")
                else:
                    result.update(groups_outcome(azure_conn_id, verdicts))
                    log.info("%s", table(result))
                if blob_verdicts is None:
                    problems.append("find_staging_blobs recorded no verdicts (it failed): no staging blob was judged")
                else:
                    doomed = ti.xcom_pull(task_ids="find_staging_blobs") or []
                    result["staging_blobs"] = blobs_outcome(azure_conn_id, blob_verdicts, doomed)
                    log.info("%s", table(result["staging_blobs"], key="blob", title="Staging blobs", column="blob"))
            stuck = ([r["group"] for r in result.get("not_removed", [])]
                     + [r["blob"] for r in result.get("staging_blobs", {}).get("not_removed", [])])
            if stuck:
                problems.append(f"not removed: {', '.join(stuck)} (see the sweep tasks)")
            if problems:
                raise AirflowFailException("; ".join(problems))
            return result

        blobs = find_staging_blobs()
        [sweep, sweep_staging_blobs(blobs)] >> report()
    return dag
