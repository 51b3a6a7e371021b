"""docker-compose.yaml's topology without Docker: the Airflow services it declares, as processes on this machine.

The api-server, scheduler, dag-processor, triggerer and Celery worker run with the compose file's own
executor, metadata DB, broker, result backend and lineage store settings, with its service hosts
(postgres, redis) rewritten to this machine's Postgres and Redis: a database of the test's own on each
and a Celery queue of its own, all removed afterwards. The Linux generalized DAG, triggered through the
REST API, must succeed with every task run by the Celery worker (the result backend holds one result
per try), its waits deferred to the triggerer, its run in Postgres and its lineage in the Postgres store.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from devstack.compose import airflow_components, load
from image_factory.lineage.record import PUBLISHED
from tests.e2e.airflow_pipeline import Pipeline, running_pipeline
from tests.e2e.test_airflow_pipeline import DEFERRED_WAITS, TIME_FACTOR, assert_one_promoted_version_and_no_leftovers

pytestmark = [pytest.mark.slow, pytest.mark.guests("simulated"), pytest.mark.timeout(900)]

# this machine's services (``./factory test`` checks they answer); the test makes its own databases and queue there
POSTGRES = make_url(os.environ.get("IMAGE_FACTORY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"))
REDIS = os.environ.get("IMAGE_FACTORY_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_TIMEOUT = 480.0
# what the test takes from the compose file, by name: the rest (keys, connection to Azure) is per deployment
COMPOSE_SETTINGS = ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
                    "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW_CONN_IMAGE_FACTORY_LINEAGE")


def _libpq(database: str) -> str:
    return POSTGRES.set(drivername="postgresql", database=database).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(str(POSTGRES.database)), autocommit=True) as conn:
        conn.execute(sql)


def _on_this_machine(url: str, databases: dict[str, str]) -> str:
    """A compose service URL pointed at this machine's Postgres (its user, the test's database) or Redis."""
    parsed = make_url(url.removeprefix("db+"))
    if parsed.drivername.startswith("redis"):
        return REDIS
    local = parsed.set(host=POSTGRES.host, port=POSTGRES.port, username=POSTGRES.username,
                       password=POSTGRES.password, database=databases[str(parsed.database)])
    return ("db+" if url.startswith("db+") else "") + local.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


@pytest.fixture(scope="module")
def databases(compose: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The compose file's databases, each as a fresh one of this test's on the local Postgres."""
    env = compose["x-airflow-common"]["environment"]
    names = {str(make_url(env[k].removeprefix("db+")).database) for k in COMPOSE_SETTINGS
             if k != "AIRFLOW__CORE__EXECUTOR" and "postgres" in env[k].split(":", 1)[0]}
    suffix = uuid.uuid4().hex[:10]
    made = {name: f"imgf_{name}_{suffix}" for name in sorted(names)}
    try:
        for local in made.values():
            _admin(f'CREATE DATABASE "{local}"')
        yield made
    finally:
        for local in made.values():
            _admin(f'DROP DATABASE IF EXISTS "{local}" WITH (FORCE)')


@pytest.fixture(scope="module")
def queue() -> Iterator[str]:
    """A Celery queue no other Airflow on this Redis listens on; its keys are deleted afterwards."""
    import redis

    name = f"imgf-e2e-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"*{name}*"):
        client.delete(key)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, compose: dict[str, Any], databases: dict[str, str],
             queue: str) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("celery-deployment")
    env = compose["x-airflow-common"]["environment"]
    settings = {k: env[k] if k == "AIRFLOW__CORE__EXECUTOR" else _on_this_machine(env[k], databases)
                for k in COMPOSE_SETTINGS}
    settings["AIRFLOW_CONN_IMAGE_FACTORY_LINEAGE"] = settings["AIRFLOW_CONN_IMAGE_FACTORY_LINEAGE"].replace(
        "postgresql://", "postgres://", 1)  # the connection URI form, as in the compose file
    airflow_env = {**settings, "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue, "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4"}
    components = tuple(airflow_components(compose["services"]).values())
    with running_pipeline(tmp, time_factor=TIME_FACTOR, azure_env={"LOCAL_AZURE_LINUX_RUNTIME": "simulated"},
                          airflow_env=airflow_env, components=components) as p:
        yield p


def _rows(database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(_libpq(database)) as conn:
        return list(conn.execute(sql, params).fetchall())


def _settled_celery_results(database: str, timeout: float = 60.0) -> list[tuple[Any, ...]]:
    """The result backend's rows once no task is still STARTED there.

    The worker stores a task's SUCCESS only after the Airflow task process has exited, so the last
    task of a run can still read STARTED for a moment after Airflow marks the run finished.
    """
    deadline = time.monotonic() + timeout
    while True:
        results = _rows(database, "SELECT status FROM celery_taskmeta")
        if all(status != "STARTED" for (status,) in results) or time.monotonic() > deadline:
            return results
        time.sleep(1.0)


def test_the_compose_topology_runs_an_image_build_through_celery(pipeline: Pipeline, compose: dict[str, Any],
                                                                   databases: dict[str, str], queue: str) -> None:
    assert sorted(pipeline.stack.procs) == sorted(["api-server", "scheduler", "dag-processor", "celery worker",
                                                   "triggerer"])
    run_id = pipeline.trigger("e2e: distributed deployment (CeleryExecutor)")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    summary = assert_one_promoted_version_and_no_leftovers(pipeline, run_id)

    tis = pipeline.task_instances(run_id)
    assert {ti["state"] for ti in tis} == {"success"}
    assert {ti["queue"] for ti in tis} == {queue} and {ti["executor"] for ti in tis} <= {"CeleryExecutor", None}
    # every try went through the broker to the worker and back: one Celery result per try
    airflow_db = databases["airflow"]
    results = _settled_celery_results(airflow_db)
    tries = sum(int(ti["try_number"]) for ti in tis)
    assert len(results) >= tries and {r[0] for r in results} == {"SUCCESS"}, (len(results), tries)
    worker_log = pipeline.stack.log_path("celery worker").read_text(errors="replace")
    assert queue in worker_log and "golden_debian12-web" in worker_log  # the worker took them off our queue
    # the run lives in the metadata DB on Postgres, the waits happened in the triggerer
    assert _rows(airflow_db, "SELECT state FROM dag_run WHERE run_id = %s", run_id) == [("success",)]
    for task_id, map_index in DEFERRED_WAITS:
        fired = pipeline.fired_triggers(run_id, task_id, map_index)
        assert fired and all("'status': 'success'" in event for event in fired), (task_id, map_index, fired)
    # the version's lineage record is in the shared Postgres store every worker writes to
    lineage = _rows(databases["image_factory_lineage"],
                    "SELECT run_id, status FROM lineage_records WHERE version = %s", summary["version"])
    assert lineage == [(run_id, PUBLISHED)], lineage
