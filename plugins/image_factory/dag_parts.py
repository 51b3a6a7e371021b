"""The pieces a build's DAG and an import's DAG share: planning first, publishing and cleaning up last.

Called inside a ``with DAG(...)`` block. ``plan`` is the setup (it writes nothing) that both teardowns
belong to, so whatever fails later, the run's resources are deleted and the run is recorded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from airflow.sdk import task

from image_factory.definitions import ImageDefinition
from image_factory.operators.base import retry_only_transient
from image_factory.operators.gallery import WaitForReplicationOperator
from image_factory.operators.lineage import RecordLineageOperator
from image_factory.operators.resources import TeardownOperator
from image_factory.operators.smoke import SmokeTestOperator


def task_defaults(d: ImageDefinition) -> dict[str, Any]:
    """Every task's owner and retries: transient failures are retried with backoff (bad input never is)."""
    return {"owner": d.owner, "retries": 3, "retry_delay": timedelta(seconds=15), "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=5)}


def plan_and_proceed(d: ImageDefinition, conn: str) -> tuple[Any, Any]:
    """The ``plan`` task (validate, decide the version; no ARM write) and ``proceed`` (stops a plan-only run)."""
    from image_factory.pipeline import steps

    @task(task_id="plan")
    def plan(**context: Any) -> dict[str, Any]:
        with retry_only_transient("plan"):
            run_type = context["dag_run"].run_type  # scheduled (the patch timetable), manual (UI, API), ...
            return steps.plan_run(d.name, context["dag"].dag_id, context["run_id"], dict(context["params"]), conn,
                                  run_type=str(getattr(run_type, "value", run_type)))

    @task.short_circuit(task_id="proceed", ignore_downstream_trigger_rules=True)
    def proceed(p: Any) -> bool:
        """Stop here for a plan-only run (its plan and preview are in the plan task's log and XCom)."""
        return not p.get("plan_only")

    p = plan()
    return p, proceed(p)


def publish_and_clean_up(d: ImageDefinition, p: Any, cap: Any, stages: dict[str, Any], *, conn: str,
                         smoke_pool: dict[str, Any], teardown_plan: Any = None) -> None:
    """replicate → smoke test per region → promote → report, then teardown and record_lineage.

    ``cap`` is the capture task's output; ``stages`` the earlier tasks' outputs the report sums up;
    ``teardown_plan`` (an import's plan) lets teardown also delete what lives outside the run's group."""
    from image_factory.pipeline import steps
    from image_factory.pipeline.build import Build

    @task(task_id="smoke_regions")
    def smoke_regions(p: Any, cap: Any, _replicated: Any) -> list[str]:
        if cap.get("version_id"):
            return [r["name"] for r in p["regions"]]
        return [p["location"]]  # a managed image lives in the build region only

    @task(task_id="promote")
    def promote(p: Any, replication: Any, results: Any) -> dict[str, Any]:
        with retry_only_transient("promote"):
            return steps.promote(Build.from_task(p, conn), replication, list(results))

    @task(task_id="report")
    def report(p: Any, stages: Any) -> dict[str, Any]:
        return steps.report(p, stages)

    replicated = WaitForReplicationOperator(task_id="replicate", plan=p, azure_conn_id=conn,
                                            region_timeout_seconds=d.replication_timeout_minutes * 60)
    cap >> replicated
    smoke = SmokeTestOperator.partial(task_id="smoke_test", plan=p, capture=cap, azure_conn_id=conn,
                                      **smoke_pool).expand(region=smoke_regions(p, cap, replicated.output))
    promoted = promote(p, replicated.output, smoke.output)
    summary = report(p, {**stages, "capture": cap, "replicate": replicated.output, "smoke_test": smoke.output,
                         "promote": promoted})
    planned = cast(Any, p).operator  # the plan task itself: the setup both teardowns belong to
    teardown = TeardownOperator(task_id="teardown", image=d.name, plan=teardown_plan, azure_conn_id=conn)
    summary >> teardown.as_teardown(setups=planned)
    # failed runs are recorded too; after teardown, so ``report`` stays a leaf that decides the run's state,
    # and a failure to record fails the run (on_failure_fail_dagrun) rather than pass unseen
    lineage = RecordLineageOperator(task_id="record_lineage", image=d.name, azure_conn_id=conn)
    teardown >> lineage.as_teardown(setups=planned, on_failure_fail_dagrun=True)
