"""The scheduler's listener records how golden-image runs started, and never breaks the scheduler."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from image_factory.lineage import listener
from image_factory.lineage.store import LineageStore


def _wait_for_writers() -> None:
    for t in threading.enumerate():
        if t.name == "image-factory-run-trigger":
            t.join(timeout=30)


def test_records_the_trigger_of_a_golden_image_run_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    monkeypatch.setenv("IMAGE_FACTORY_LINEAGE_URL", url)
    kind = SimpleNamespace(value="UI")
    listener.on_dag_run_running(SimpleNamespace(dag_id="golden_debian12-web", run_id="manual__1", triggered_by=kind,
                                                triggering_user_name="alice", run_type="manual"), "")
    listener.on_dag_run_running(SimpleNamespace(dag_id="sweep_build_resources", run_id="scheduled__1",
                                                triggered_by=None, triggering_user_name=None, run_type="scheduled"), "")
    _wait_for_writers()
    store = LineageStore(url)
    seen = store.trigger_of("golden_debian12-web", "manual__1")
    assert seen is not None and (seen["triggered_by"], seen["user"], seen["run_type"]) == ("ui", "alice", "manual")
    assert store.trigger_of("sweep_build_resources", "scheduled__1") is None


class Detached:
    """What a DagRun whose session closed does: any attribute read raises."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("Instance <DagRun> is not bound to a Session")


def test_an_unreadable_run_or_an_unreachable_store_is_logged_not_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    listener.on_dag_run_running(Detached(), "")
    monkeypatch.setenv("IMAGE_FACTORY_LINEAGE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    listener.on_dag_run_running(SimpleNamespace(dag_id="golden_x", run_id="r", triggered_by=None,
                                                triggering_user_name=None, run_type="manual"), "")
    _wait_for_writers()
    messages = [r.getMessage() for r in caplog.records]
    assert "Could not read a starting DAG run's trigger" in messages
    assert "Could not record how golden_x r was triggered" in messages
