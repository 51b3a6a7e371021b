"""The sweeper DAG: delete the temporary resource groups that dead or failed image runs left behind.

Every hour `find` lists the groups tagged `project=golden-image-factory` with a `run-id`, asks this
Airflow the state of each group's run (`golden_<image>`, the run id) and applies the rule in
`plugins/image_factory/sweeper.py`: keep what a queued or running run uses, delete what a finished
run left, and delete a group of a run this Airflow does not know only once its `expiry` tag has
passed. `sweep` deletes each such group (one mapped task per group, waiting deferred until ARM says
it is gone); `report` logs a table of what was removed, what was kept and why, and fails the run if
a deletion did not finish.
"""

from __future__ import annotations

import logging
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


def sweeper_dag(*, azure_conn_id: str = DEFAULT_CONN_ID, schedule: str = "@hourly") -> DAG:
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
                (log.warning if v.unrecognised else log.info)("%s: %s (%s)", v.group, v.action, v.reason)
            doomed = [v.group for v in verdicts if v.action == DELETE]
            log.info("%d build resource group(s) found, %d to delete", len(verdicts), len(doomed))
            context["ti"].xcom_push(key="verdicts", value=[v.as_dict() for v in verdicts])
            return doomed

        found = find()
        sweep = DeleteResourceGroupOperator.partial(
            task_id="sweep", azure_conn_id=azure_conn_id, map_index_template="{{ task.resource_group }}",
        ).expand(resource_group=found)

        @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
        def report(**context: Any) -> dict[str, list[dict[str, str]]]:
            """Runs whatever sweep did (nothing to map, a deletion failed); removed is what ARM no longer has."""
            from airflow.sdk.exceptions import AirflowFailException

            from image_factory.hooks.resources import ResourceGroupHook
            from image_factory.sweeper import DELETE, outcome, table

            verdicts = context["ti"].xcom_pull(task_ids="find", key="verdicts")
            if verdicts is None:
                raise AirflowFailException("find recorded no verdicts (it failed): nothing was swept")
            hook = ResourceGroupHook(azure_conn_id)
            with retry_only_transient("check the swept resource groups"):
                left = [v["group"] for v in verdicts if v["action"] == DELETE and hook.resource_group_exists(v["group"])]
            result = outcome(verdicts, left)
            log.info("%s", table(result))
            if result["not_removed"]:
                raise AirflowFailException("not removed: " + ", ".join(r["group"] for r in result["not_removed"])
                                           + " (see the sweep task of each)")
            return result

        found >> sweep >> report()
    return dag
