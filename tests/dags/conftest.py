"""Fixtures for running the golden-image DAGs with ``dag.test()`` against the session local Azure.

The factory's connection and build secret come from AIRFLOW_CONN_* / AIRFLOW_VAR_* variables, as
in the providers' own tests; the metadata DB is the test session's own (tests/airflow_env.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from image_factory.operators.base import DEFAULT_CONN_ID
from image_factory.pipeline.build import SECRET_VARIABLE
from tests.localazure import LocalAzure

TEST_SECRET = "factory-test-build-secret-0123456789"


@pytest.fixture(scope="session")
def factory_env(local_azure: LocalAzure, airflow_db: None) -> Iterator[LocalAzure]:
    """The DAGs' Azure connection pointed at the session local Azure, and the build secret."""
    keys = {f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}": local_azure.connection_uri_env(),
            f"AIRFLOW_VAR_{SECRET_VARIABLE.upper()}": TEST_SECRET}
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield local_azure
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def task_states(dag_run: Any) -> dict[str, str]:
    """Task id → final state (mapped tasks: the worst of their instances)."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    order = ["failed", "upstream_failed", "skipped", "success"]
    states: dict[str, str] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                     TaskInstance.run_id == dag_run.run_id):
            state = str(getattr(ti.state, "value", ti.state))
            prev = states.get(ti.task_id)
            if prev is None or (state in order and prev in order and order.index(state) < order.index(prev)):
                states[ti.task_id] = state
    return states


def xcom(dag_run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
                                              XComModel.task_id == task_id, XComModel.key == "return_value").first()
        return None if row is None else XComModel.deserialize_value(row)


def leftovers(emu: LocalAzure, run_id: str) -> list[str]:
    """Resources still tagged with this run (the run's group and everything in it)."""
    found = emu.ops("GET", "inventory", tag=f"run-id={run_id}")["value"]
    return [r["id"] for r in found]


def scheduled_test(dag: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``dag.test()`` as the timetable's run: run type SCHEDULED, id ``scheduled__…``, triggered by the timetable.

    dag.test() always creates a manual run through ``get_or_create_dagrun`` (a helper only it uses);
    for this call that run is created the way the scheduler creates one, so the tasks read the run
    type from the metadata DB as in a real scheduled run. The dates stay dag.test()'s (now).
    """
    import airflow.models.dagrun as dagrun_module
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    def scheduled_dagrun(*, dag: Any, logical_date: Any, data_interval: Any, run_after: Any, conf: Any,
                         start_date: Any, session: Any, **_manual: Any) -> Any:
        earlier = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.logical_date == logical_date))
        if earlier:
            session.delete(earlier)
            session.commit()
        run_id = DagRun.generate_run_id(run_type=DagRunType.SCHEDULED, logical_date=logical_date, run_after=run_after)
        return dag.create_dagrun(run_id=run_id, logical_date=logical_date, data_interval=data_interval,
                                 run_after=run_after, conf=conf, run_type=DagRunType.SCHEDULED,
                                 state=DagRunState.RUNNING, triggered_by=DagRunTriggeredByType.TIMETABLE,
                                 triggering_user_name=None, start_date=start_date, session=session)

    with monkeypatch.context() as patch:
        patch.setattr(dagrun_module, "get_or_create_dagrun", scheduled_dagrun)
        return dag.test()
