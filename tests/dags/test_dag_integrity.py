"""DAG integrity: every file in dags/ imports cleanly, every DAG is documented, tagged and retried,
and parsing touches neither the network nor Airflow's Variables and Connections."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag(airflow_db: None) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_file_imports(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    images = sorted(p.stem for p in (ROOT / "include" / "images").glob("*.yaml"))
    assert sorted(d.removeprefix("golden_") for d in dagbag.dag_ids if d.startswith("golden_")) == images


def test_every_dag_has_docs_tags_owner_and_retries(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no docs"
        assert dag.max_active_runs == 1 and dag.catchup is False
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            if not t.is_teardown:
                assert t.retries >= 1, f"{dag_id}.{t.task_id} is never retried"


def test_pipeline_shape(dagbag: Any) -> None:
    dag = dagbag.dags["golden_debian12-web"]
    chain = ["plan", "proceed", "build_environment", "provision_vm", "wait_for_guest", "check_changes", "publish_needed",
             "customise", "generalize", "wait_for_stop", "deallocate", "capture", "replicate", "smoke_regions",
             "smoke_test", "promote", "report"]
    for upstream, downstream in itertools.pairwise(chain):
        assert upstream in dag.get_task(downstream).upstream_task_ids | {
            u for t in dag.get_task(downstream).upstream_list for u in t.upstream_task_ids}, (upstream, downstream)
    assert dag.get_task("plan").is_setup and dag.get_task("teardown").is_teardown
    for waiting in ("wait_for_guest", "generalize", "wait_for_stop", "replicate"):
        assert hasattr(dag.get_task(waiting), "execute_complete"), f"{waiting} must defer"


def test_parsing_uses_no_network_variables_or_connections(monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Variable

    def forbidden(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("DAG parsing must not do this")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(Variable, "get", forbidden)
    monkeypatch.setattr(BaseHook, "get_connection", forbidden)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {} and len(bag.dag_ids) >= 4


def test_a_broken_definition_shows_as_a_failing_dag_with_its_errors(tmp_path: Path) -> None:
    from image_factory.dag_factory import image_dags

    good = (ROOT / "include" / "images" / "debian12-web.yaml").read_text()
    (tmp_path / "debian12-web.yaml").write_text(good)
    (tmp_path / "broken.yaml").write_text(good.replace("name: debian12-web", "name: broken").replace(
        "replicas: 2", "replicas: 0"))
    dags = image_dags(tmp_path)
    assert "invalid-definition" in dags["golden_broken"].tags
    assert "replication.regions[1].replicas: must be at least 1" in dags["golden_broken"].doc_md
    assert [t.task_id for t in dags["golden_broken"].tasks] == ["invalid_definition"]
    assert "invalid-definition" not in dags["golden_debian12-web"].tags
