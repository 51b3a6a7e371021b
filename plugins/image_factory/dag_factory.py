"""One golden-image DAG per image definition, built without I/O beyond reading the YAML files.

The DAG is the pipeline of DESIGN.md as a flat chain of one-step tasks. ``plan`` is the setup
(it writes nothing), so the teardown that deletes the run's resource group runs whenever planning
succeeded: whatever failed later, nothing is left behind.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_parsing_context, task

from image_factory.dag_parts import plan_and_proceed, publish_and_clean_up, task_defaults
from image_factory.definition_schema import KNOWN_REGIONS
from image_factory.definitions import DefinitionError, ImageDefinition, load_file
from image_factory.fleet import Fleet, build_vm_pool
from image_factory.fleet import load as load_fleet
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient
from image_factory.operators.compute import WaitForGuestOperator, WaitForPowerStateOperator
from image_factory.operators.generalize import GeneralizeOperator
from image_factory.pipeline.build import include_dir

DAG_PREFIX = "golden_"
START = datetime(2026, 1, 1, tzinfo=UTC)


def dag_id_for(image: str) -> str:
    return DAG_PREFIX + image


def run_params() -> dict[str, Param]:
    """What a person (UI form) or a system (REST API conf) may set for one build.

    The UI marks a param required (and keeps Trigger disabled while it is empty) unless its type admits "null",
    and offers a multi-select for an array only when the choices are the param's own ``examples``; ``items.enum``
    is what the trigger-time validation checks.
    """
    return {
        "version": Param(None, type=["null", "string"], pattern=r"^\d{1,10}\.\d{1,10}\.\d{1,10}$",
                         title="Version override",
                         description="Major.Minor.Patch; must be greater than the newest version in the gallery. "
                                     "Empty: the next patch version."),
        "bump": Param("patch", enum=["patch", "minor", "major"], title="Version part to bump"),
        "regions": Param(None, type=["null", "array"], items={"type": "string", "enum": list(KNOWN_REGIONS)},
                         examples=list(KNOWN_REGIONS), title="Target regions",
                         description="Empty: the definition's regions."),
        "replicas": Param(None, type=["null", "integer"], minimum=1, maximum=100, title="Replicas per region",
                          description="Empty: each region's count from the definition."),
        "source_version": Param(None, type=["null", "string"], pattern=r"^(latest|\d+\.\d+\.\d+)$",
                                title="Source image version pin", description="Empty: the definition's choice."),
        "plan_only": Param(False, type=["null", "boolean"], title="Plan only",
                           description="Report what the run would create, change and cost, and stop: no ARM write."),
        "reason": Param("", type=["null", "string"], maxLength=500, title="Reason",
                        description="Recorded with the run."),
    }


def _doc(d: ImageDefinition) -> str:
    source: Any = d.source.marketplace or d.source.gallery_image_version or {"managed_image": d.source.managed_image}
    regions = ", ".join(f"{r.name} x{r.replicas} ({r.storage_account_type})" for r in d.regions)
    scripts = "\n".join(f"  1. `{s.path}` (sha256 `{s.sha256[:12]}…`)" for s in d.scripts) or "  (none)"
    unchanged = ("published (`schedule.publish_when_unchanged` is true, the default)" if d.publish_when_unchanged else
                 "a scheduled rebuild whose source, scripts and pending package updates match the newest version "
                 "stops after check changes and publishes nothing (`schedule.publish_when_unchanged: false`); "
                 "manual and API runs always publish")
    return (f"# Golden image `{d.name}`\n\n{d.description}\n\n"
            f"- **Publishes**: {d.gallery_name}/{d.definition} ({d.os_type}, {d.os_state}, Hyper-V {d.hyper_v_generation})"
            f"{'; managed image ' + d.managed_image['name'] if d.managed_image else ''}\n"
            f"- **Source**: `{source}`\n- **Build**: {d.vm_size} in {d.build_location}\n"
            f"- **Regions**: {regions}\n- **Scripts**:\n{scripts}\n- **Unchanged rebuilds**: {unchanged}\n\n"
            "Defined in `include/images/" + d.name + ".yaml`. Stages: plan → build environment → provision → "
            "wait for guest → check changes → customise → generalize → wait for stop → deallocate + generalize → "
            "capture → replicate → smoke test per region → promote → report; teardown and record lineage always run.")


def _schedule(d: ImageDefinition) -> Any:
    """The monthly patch rebuild when the definition has a schedule; otherwise manual and API runs only."""
    if not d.schedule:
        return None
    from image_factory.timetables import PatchTuesdayTimetable

    return PatchTuesdayTimetable(int(d.schedule.get("patch_tuesday_offset_days", 0)), str(d.schedule.get("time", "02:00")))


def image_dag(d: ImageDefinition, *, azure_conn_id: str = DEFAULT_CONN_ID, fleet: Fleet | None = None) -> DAG:
    """The golden-image pipeline for one definition; with fleet limits, its VM tasks take vCPU pool slots."""
    from image_factory.pipeline import steps
    from image_factory.pipeline.build import Build

    conn = azure_conn_id
    vm_pool = build_vm_pool(fleet, d.build_location, d.vm_size)  # the build VM holds a machine in these tasks
    smoke_pool = build_vm_pool(fleet, d.build_location, d.smoke_vm_size)
    with DAG(
        dag_id=dag_id_for(d.name), description=(d.description or d.name)[:200], doc_md=_doc(d), schedule=_schedule(d),
        start_date=START, catchup=False, max_active_runs=1, params=run_params(),
        tags=["golden-image", d.os_type.lower(), d.os_state.lower(), *d.tags],
        default_args=task_defaults(d),
    ) as dag:

        @task(task_id="build_environment")
        def build_environment(p: Any) -> dict[str, Any]:
            with retry_only_transient("build environment"):
                return steps.build_environment(Build.from_task(p, conn))

        @task(task_id="provision_vm", **vm_pool)
        def provision_vm(p: Any, env: Any) -> dict[str, Any]:
            with retry_only_transient("provision source VM"):
                return steps.provision(Build.from_task(p, conn), env)

        @task(task_id="check_changes", **vm_pool)
        def check_changes(p: Any, ready: Any) -> dict[str, Any]:
            with retry_only_transient("check changes"):
                return steps.check_changes(Build.from_task(p, conn), ready)

        @task.short_circuit(task_id="publish_needed", ignore_downstream_trigger_rules=False, **vm_pool)
        def publish_needed(checked: Any) -> bool:
            """Stop publishing when nothing changed: the rest is skipped, teardown runs (why: check_changes' log, XCom)."""
            return bool(checked["publish"])

        @task(task_id="customise", **vm_pool)
        def customise(p: Any, ready: Any) -> dict[str, Any]:
            with retry_only_transient("customise"):
                return steps.customise(Build.from_task(p, conn), ready)

        @task(task_id="deallocate", **vm_pool)
        def deallocate(p: Any, _stopped: Any) -> dict[str, Any]:
            with retry_only_transient("deallocate + generalize"):
                return steps.deallocate_and_mark(Build.from_task(p, conn))

        @task(task_id="capture")
        def capture(p: Any, vm: Any, _deallocated: Any, checked: Any) -> dict[str, Any]:
            with retry_only_transient("capture"):
                return steps.capture(Build.from_task(p, conn), vm["vm_id"], checked)

        p, go = plan_and_proceed(d, conn)
        env = build_environment(p)
        go >> env
        vm = provision_vm(p, env)
        ready = WaitForGuestOperator(task_id="wait_for_guest", plan=p, vm=vm, azure_conn_id=conn, **vm_pool)
        checked = check_changes(p, ready.output)
        custom = customise(p, ready.output)
        publish_needed(checked) >> custom
        gen = GeneralizeOperator(task_id="generalize", plan=p, ready=ready.output, azure_conn_id=conn, **vm_pool)
        custom >> gen
        stopped = WaitForPowerStateOperator(task_id="wait_for_stop", plan=p, azure_conn_id=conn, **vm_pool)
        gen >> stopped
        dealloc = deallocate(p, stopped.output)
        cap = capture(p, vm, dealloc, checked)
        publish_and_clean_up(d, p, cap, {"build_environment": env, "provision_vm": vm, "wait_for_guest": ready.output,
                                         "check_changes": checked, "customise": custom, "generalize": gen.output,
                                         "wait_for_stop": stopped.output, "deallocate": dealloc},
                             conn=conn, smoke_pool=smoke_pool)
    return dag


def invalid_definition_dag(stem: str, error: DefinitionError) -> DAG:
    """A broken definition still shows up in the UI, with its errors, and cannot build anything."""
    message = str(error)
    with DAG(dag_id=dag_id_for(stem), schedule=None, start_date=START, catchup=False,
             tags=["golden-image", "invalid-definition"],
             doc_md=f"# `images/{stem}.yaml` is invalid\n\n```\n{message}\n```", params={}) as dag:

        @task(task_id="invalid_definition", retries=0)
        def invalid() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(message)

        invalid()
    return dag


def image_dags(folder: Path | None = None, *, azure_conn_id: str = DEFAULT_CONN_ID) -> dict[str, DAG]:
    """Every definition's DAG by dag id (reads only the YAML files: no network, no Airflow metadata).

    A task's process parses the file only to run one task: then only that DAG is built (a fleet of N
    definitions would otherwise cost every task N DAGs; the name equals the file's stem).
    """
    images = folder or include_dir() / "images"
    limits = load_fleet(images.parent)  # include/fleet.yaml: the pools the VM tasks take (none without it)
    running = get_parsing_context().dag_id
    dags: dict[str, DAG] = {}
    for path in sorted(images.glob("*.yaml")):
        if running is not None and running != dag_id_for(path.stem):
            continue
        try:
            definition = load_file(path, label=f"images/{path.name}")
        except DefinitionError as exc:
            dags[dag_id_for(path.stem)] = invalid_definition_dag(path.stem, exc)
            continue
        if definition.source.disk:
            from image_factory.import_dag import disk_import_dag

            dags[dag_id_for(definition.name)] = disk_import_dag(
                definition, dag_id=dag_id_for(definition.name), params=run_params(), start_date=START,
                azure_conn_id=azure_conn_id,
                smoke_pool=build_vm_pool(limits, definition.build_location, definition.smoke_vm_size))
            continue
        dags[dag_id_for(definition.name)] = image_dag(definition, azure_conn_id=azure_conn_id, fleet=limits)
    return dags
