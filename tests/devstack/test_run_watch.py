"""RunWatch, the main job's progress printer, fed task-instance lists as Airflow's API returns them."""

from __future__ import annotations

from typing import Any, cast

from devstack.airflow import AirflowStack
from devstack.main_job import RunWatch

VERSION_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.0"


class FakeStack:
    def __init__(self) -> None:
        self.tis: list[dict[str, Any]] = []

    def token(self) -> str:
        return "t"

    def run_state(self, dag_id: str, run_id: str, token: str) -> str:
        return "running"

    def task_instances(self, dag_id: str, run_id: str, token: str) -> list[dict[str, Any]]:
        return self.tis

    def xcom(self, dag_id: str, run_id: str, task_id: str, token: str) -> Any:
        return {"version_id": VERSION_ID} if task_id == "capture" else None


def watch_with(replication: dict[str, Any]) -> tuple[RunWatch, FakeStack, list[str], list[str]]:
    stack, said, asked = FakeStack(), list[str](), list[str]()

    def status(version_id: str) -> dict[str, Any]:
        asked.append(version_id)
        return replication

    watch = RunWatch(cast(AirflowStack, stack), "dag", "run", said.append, status)
    return watch, stack, said, asked


def test_a_replication_shorter_than_a_poll_still_prints_where_each_region_ended_once() -> None:
    done = {
        "regions": {
            "westeurope": {"state": "Completed", "progress": 100},
            "eastus": {"state": "Completed", "progress": 100},
        }
    }
    watch, stack, said, asked = watch_with(done)
    stack.tis = [{"task_id": "capture", "state": "success"}, {"task_id": "replicate", "state": "success"}]
    watch._poll("t")
    watch._poll("t")
    lines = [line for line in said if "replication to" in line]
    assert len(lines) == 2 and all("Completed 100%" in line for line in lines)
    assert asked == [VERSION_ID]  # asked once, not on every later poll


def test_progress_is_printed_only_when_a_region_changes_and_not_before_replicate_starts() -> None:
    progress = {"regions": {"eastus": {"state": "Replicating", "progress": 40}}}
    watch, stack, said, asked = watch_with(progress)
    stack.tis = [{"task_id": "capture", "state": "running"}]
    watch._poll("t")
    assert asked == []
    stack.tis = [{"task_id": "capture", "state": "success"}, {"task_id": "replicate", "state": "deferred"}]
    watch._poll("t")
    watch._poll("t")
    assert [line.split("]", 1)[1].split() for line in said if "replication to" in line] == [
        ["replication", "to", "eastus", "Replicating", "40%"]
    ]
