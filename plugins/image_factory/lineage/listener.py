"""The scheduler's listener: how each golden-image run was started (UI, REST API, schedule, ...).

A task sees its run's type but not whether a person clicked Trigger in the UI or a system called
the REST API; the scheduler's DagRun knows (``triggered_by``). This records it in the lineage
store as the run starts, for the run's lineage record.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow.listeners import hookimpl

GOLDEN_PREFIX = "golden_"
log = logging.getLogger(__name__)


def _text(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value)).lower()


def _record(dag_id: str, run_id: str, triggered_by: str | None, user: str | None, run_type: str | None) -> None:
    try:
        from image_factory.hooks.lineage import lineage_store

        lineage_store().record_trigger(dag_id, run_id, triggered_by=triggered_by, user=user, run_type=run_type)
    except Exception:  # the scheduler must never stop for lineage: the record then says "manual"
        log.warning("Could not record how %s %s was triggered", dag_id, run_id, exc_info=True)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """Read the run's facts here, write them from a thread of its own.

    The write may look up the ``image_factory_lineage`` connection, and a metadata-DB lookup on the
    scheduler's thread would close the scheduler's own session under it (its DagRun objects then
    detach and the scheduler loops on them). A new thread has a session of its own.
    """
    try:
        facts = (str(dag_run.dag_id), str(dag_run.run_id), _text(dag_run.triggered_by),
                 dag_run.triggering_user_name, _text(dag_run.run_type))
    except Exception:
        log.warning("Could not read a starting DAG run's trigger", exc_info=True)
        return
    if facts[0].startswith(GOLDEN_PREFIX):
        threading.Thread(target=_record, args=facts, name="image-factory-run-trigger", daemon=True).start()
