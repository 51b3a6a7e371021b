"""Record a run's lineage once the pipeline is done, whether it published or failed.

A teardown of the plan (it runs whatever failed), so a failed build is recorded too; it writes
the same record to the lineage store and, digested, to the version's tags, hands it to the
OpenLineage provider, and announces a published version as Airflow Assets (through an alias, so
an event exists only for a version that was really published).
"""

from __future__ import annotations

import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import AssetAlias, BaseOperator

from image_factory.lineage import events, record
from image_factory.operators.base import DEFAULT_CONN_ID

log = logging.getLogger(__name__)

# the pipeline's tasks in run order: the first that failed is where the build stopped
STAGES = ("plan", "prepare_disk", "inspect_disk", "build_environment", "upload", "provision_vm", "wait_for_guest", "check_changes", "customise", "generalize",
          "wait_for_stop", "deallocate", "capture", "replicate", "smoke_test", "promote", "report")
FAILED_STATES = {"failed", "upstream_failed"}
COMMIT_ENV = "IMAGE_FACTORY_GIT_COMMIT"


def alias_name(image: str) -> str:
    return f"golden_image_versions_{image}"


def project_commit(root: Path | None = None) -> str:
    """The project's git commit (``-dirty`` when tracked files differ from it); a deployment without
    ``.git`` sets ``IMAGE_FACTORY_GIT_COMMIT`` at build time instead."""
    if found := os.environ.get(COMMIT_ENV):
        return found
    where = str(root or Path(__file__).resolve().parents[3])
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def failed_stage(states: dict[str, Any]) -> str | None:
    """The first pipeline task (in run order) that failed, mapped smoke tests included."""
    by_task: dict[str, set[str]] = {}
    for key, state in states.items():
        task = key.rsplit("_", 1)[0] if key.rsplit("_", 1)[-1].isdigit() and key.startswith("smoke_test") else key
        by_task.setdefault(task, set()).add(str(getattr(state, "value", state)))
    for task in STAGES:
        if by_task.get(task, set()) & FAILED_STATES:
            return task
    return None


class RecordLineageOperator(BaseOperator):
    """Write the version's lineage record: the store, the version's tags, OpenLineage, Assets."""

    ui_color = "#e8f0fe"

    def __init__(self, *, image: str, azure_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(outlets=[AssetAlias(alias_name(image))], **kwargs)
        self.image = image
        self.azure_conn_id = azure_conn_id
        self._record: dict[str, Any] | None = None

    def execute(self, context: Any) -> dict[str, Any] | None:
        from image_factory.hooks.lineage import lineage_store
        from image_factory.pipeline.build import Build

        ti, dag_run = context["ti"], context["dag_run"]
        plan = ti.xcom_pull(task_ids="plan")
        if not plan or plan.get("plan_only"):
            log.info("Nothing to record: %s", "a plan-only run" if plan else "planning did not finish")
            return None
        checked = ti.xcom_pull(task_ids="check_changes")
        if checked and not checked.get("publish"):
            log.info("Nothing to record: the run published nothing (%s)", checked.get("reason"))
            return None
        stages = {t: ti.xcom_pull(task_ids=t) for t in STAGES if t != "smoke_test"}
        # a list of task ids pulls every map index of the mapped smoke test, as a list even when there is one
        stages["smoke_test"] = [s for s in ti.xcom_pull(task_ids=["smoke_test"]) or [] if isinstance(s, dict)]
        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id], task_ids=list(STAGES))
        failed = failed_stage(states.get(dag_run.run_id, {}))
        b = Build.from_task(plan, self.azure_conn_id)
        store = lineage_store()
        version = self._own_version(b, plan)
        rec = record.build(plan, stages, image=self._image_facts(b), run=self._run(context, store),
                           git_commit=project_commit(), failed_task=failed,
                           recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
                           end_of_life=(version or {}).get("end_of_life"))
        store.save(rec)
        if version is not None:
            b.gallery.update_version(*self._where(b, plan), tags=record.tags(rec, version["tags"]))
        self._record = rec
        if rec["status"] == record.PUBLISHED:
            self._announce(context, b, rec)
        log.info("Lineage of %s %s recorded (%s%s): parent %s, %d packages, trigger %s", rec["image"], rec["version"],
                 rec["status"], f" at {failed}" if failed else "", rec["parent_id"] or f"none ({rec['source'].get('kind') or 'marketplace'} source)",
                 len(rec["packages"]), rec["run"]["trigger"])
        return {"artifact_id": rec["artifact_id"], "status": rec["status"], "failed_task": failed}

    def _image_facts(self, b: Any) -> dict[str, Any]:
        facts = record.describe_image(b.definition)
        d = b.definition
        if d.gallery_version:
            facts["version_id"] = (f"/subscriptions/{b.compute.subscription_id}/resourceGroups/{d.gallery_resource_group}"
                                   f"/providers/Microsoft.Compute/galleries/{d.gallery_name}/images/{d.definition}"
                                   f"/versions/{b.plan['version']}")
        return facts

    @staticmethod
    def _run(context: Any, store: Any) -> dict[str, Any]:
        dag_run = context["dag_run"]
        run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
        seen = store.trigger_of(dag_run.dag_id, dag_run.run_id) or {}
        return {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "run_type": run_type,
                "trigger": record.trigger_of(run_type, dag_run.run_id, seen.get("triggered_by"), dag_run.conf),
                "triggered_by": seen.get("user") or getattr(dag_run, "triggering_user_name", None),
                "started_at": dag_run.start_date.isoformat(timespec="seconds") if dag_run.start_date else None}

    @staticmethod
    def _where(b: Any, plan: dict[str, Any]) -> tuple[str, str, str, str]:
        d = b.definition
        return d.gallery_resource_group, d.gallery_name, d.definition, plan["version"]

    def _own_version(self, b: Any, plan: dict[str, Any]) -> dict[str, Any] | None:
        """The gallery version this run created (tags, end of life); None if it never did, or it is another run's."""
        from image_factory.naming import TAG_VERSION_RUN

        if not b.definition.gallery_version:
            return None
        found = b.gallery.version_details(*self._where(b, plan))
        if found is None or found["tags"].get(TAG_VERSION_RUN) != plan["run_id"][:256]:
            return None
        return dict(found)

    def _announce(self, context: Any, b: Any, rec: dict[str, Any]) -> None:
        """Asset events for the image (what DAGs schedule on) and for the new version itself."""
        extra = {"image": rec["image"], "version": rec["version"], "version_id": rec.get("version_id"),
                 "managed_image_id": rec.get("managed_image_id"), "artifact_id": rec["artifact_id"],
                 "run_id": rec["run"]["run_id"]}
        outlet = context["outlet_events"][AssetAlias(alias_name(self.image))]
        outlet.add(events.definition_asset(self.image), extra=extra)
        if rec.get("version_id"):
            outlet.add(events.version_asset(rec["version_id"]), extra=extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        if self._record is None:
            return None
        return events.operator_lineage(self._record)
