"""The scheduler's listener: how each golden-image run was started (UI, REST API, schedule, ...).

A task sees its run's type but not whether a person clicked Trigger in the UI or a system called
the REST API; the scheduler's DagRun knows (``triggered_by``). This records it in the lineage
store as the run starts, for the run's lineage record.
"""

from __future__ import annotations

import logging

from airflow.listeners import hookimpl

GOLDEN_PREFIX = "golden_"
log = logging.getLogger(__name__)


def _text(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value)).lower()


@hookimpl
def on_dag_run_running(dag_run: object, msg: str) -> None:
    dag_id = str(getattr(dag_run, "dag_id", ""))
    if not dag_id.startswith(GOLDEN_PREFIX):
        return
    try:
        from image_factory.hooks.lineage import lineage_store

        lineage_store().record_trigger(dag_id, str(getattr(dag_run, "run_id", "")),
                                       triggered_by=_text(getattr(dag_run, "triggered_by", None)),
                                       user=getattr(dag_run, "triggering_user_name", None),
                                       run_type=_text(getattr(dag_run, "run_type", None)))
    except Exception:  # the scheduler must never stop for lineage: the record then says "manual"
        log.warning("Could not record how %s %s was triggered", dag_id, getattr(dag_run, "run_id", "?"), exc_info=True)
