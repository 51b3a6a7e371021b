"""Helpers for the end-to-end tests that run the golden-image DAGs under real Airflow processes.

A local Azure and an AirflowStack (api-server, scheduler, dag-processor, triggerer; LocalExecutor)
in a temporary folder, both always stopped by the PIDs they recorded; REST helpers that wait for a
run, read its task instances, and find what the emulator saw of it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.airflow import COMPONENTS, AirflowStack
from tests.localazure import LocalAzure, free_port

DAG_ID = "golden_debian12-web"
IMAGE = "debian12-web"
FINISHED = {"success", "failed"}
# a killed task is noticed at once by its supervisor; the heartbeat timeout covers a killed supervisor
FAST_FAILURE_DETECTION = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}


@dataclass
class Pipeline:
    """The running local Azure and Airflow, and an API token."""

    emu: LocalAzure
    stack: AirflowStack
    token: str
    dag_id: str = DAG_ID

    def trigger(self, reason: str, **conf: Any) -> str:
        return self.stack.trigger(self.dag_id, {"reason": reason, **conf}, self.token)

    def wait_finished(self, run_id: str, timeout: float) -> str:
        """The run's final state; fails with the task states if it did not finish in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.stack.run_state(self.dag_id, run_id, self.token)
            if state in FINISHED:
                return state
            time.sleep(2)
        raise AssertionError(f"run {run_id} still {state} after {timeout:.0f} s: {self.states(run_id)}")

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        return self.stack.task_instances(self.dag_id, run_id, self.token)

    def task(self, run_id: str, task_id: str) -> dict[str, Any]:
        return next(ti for ti in self.task_instances(run_id) if ti["task_id"] == task_id)

    def states(self, run_id: str) -> dict[str, str]:
        return {
            f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: str(ti["state"])
            for ti in self.task_instances(run_id)
        }

    def report(self, run_id: str) -> dict[str, Any]:
        return dict(self.stack.xcom(self.dag_id, run_id, "report", self.token))

    def run_seconds(self, run_id: str) -> float:
        from datetime import datetime

        run = self.stack.api("GET", f"dags/{self.dag_id}/dagRuns/{run_id}", self.token).json()
        return (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()

    def leftovers(self, run_id: str) -> list[str]:
        """Every resource still tagged with this run (its group and whatever was in it)."""
        return [r["id"] for r in self.emu.ops("GET", "inventory", tag=f"run-id={run_id}")["value"]]

    def request_seq(self) -> int:
        """The emulator's request counter now: later requests are read with ``since``."""
        return int(self.emu.ops("GET", "requests")["total"])

    def puts(self, path_part: str, since: int) -> list[str]:
        """Paths of the PUT requests served after ``since`` whose path contains ``path_part`` (any case)."""
        entries = self.emu.ops("GET", "requests", since=since)["entries"]
        return [e["path"] for e in entries if e["method"] == "PUT" and path_part.lower() in e["path"].lower()]

    def fired_triggers(self, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> list[str]:
        """The events the triggerer fired for one try of a task, read from its trigger log (empty: never deferred).

        The task's own log must also say it paused as deferred: the wait happened in the triggerer.
        """
        folder = self.stack.home / "logs" / f"dag_id={self.dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        task_log = folder / f"attempt={try_number}.log"
        if not task_log.exists() or "Pausing task as DEFERRED" not in task_log.read_text(errors="replace"):
            return []
        fired = []
        for path in sorted(folder.glob(f"attempt={try_number}.log.trigger.*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if '"Trigger fired event"' in line:
                    fired.append(str(json.loads(line).get("result")))
        return fired

    def wait_fault_taken(self, fault_id: str, run_id: str, timeout: float) -> None:
        """Until a one-shot fault rule retires: the matching request is now inside the emulator."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r["id"] != fault_id for r in self.emu.ops("GET", "faults")["value"]):
                return
            if self.stack.run_state(self.dag_id, run_id, self.token) in FINISHED:
                raise AssertionError(f"run {run_id} ended before reaching the fault: {self.states(run_id)}")
            time.sleep(0.1)
        raise AssertionError(f"no request matched fault {fault_id} within {timeout:.0f} s")


def own_log_server_ports() -> dict[str, str]:
    """Free ports for the worker's and triggerer's log servers (another Airflow on this machine may hold 8793/4)."""
    return {
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


@contextmanager
def running_pipeline(
    tmp: Path,
    *,
    azure_env: dict[str, str],
    time_factor: float = 0.0,
    airflow_env: dict[str, str] | None = None,
    azure_start_timeout: float = 30.0,
    dag_id: str = DAG_ID,
    components: tuple[str, ...] = COMPONENTS,
) -> Iterator[Pipeline]:
    """A local Azure and a whole Airflow deployment on free ports; both stopped by PID whatever happens."""
    emu = LocalAzure(tmp / "azure", time_factor=time_factor, env=azure_env)
    emu.start(timeout=azure_start_timeout)
    stack = AirflowStack(
        tmp / "airflow",
        port=free_port(),
        azure_connection=emu.connection_uri_env(),
        extra_env={**FAST_FAILURE_DETECTION, **own_log_server_ports(), **(airflow_env or {})},
    )
    try:
        stack.start(components)
        token = stack.token()
        stack.wait_for_dag(dag_id, token)
        yield Pipeline(emu, stack, token, dag_id)
    finally:
        try:
            stack.stop()
        finally:
            emu.stop(timeout=120)


@contextmanager
def gallery_hook(emu: LocalAzure, conn_id: str = "e2e_airflow_azure") -> Iterator[Any]:
    """The factory's GalleryHook pointed at ``emu`` through its own AIRFLOW_CONN_* entry."""
    from image_factory.hooks.gallery import GalleryHook

    with emu.connection(conn_id):
        yield GalleryHook(conn_id)


def versions_of_run(emu: LocalAzure, run_id: str, image: str = IMAGE) -> list[Any]:
    """The gallery versions of ``image`` that this run made (tag factory-run-id)."""
    from image_factory.pipeline.build import load_definition

    d = load_definition(image)
    with gallery_hook(emu) as hook:
        return [
            v for v in hook.list_versions(d.gallery_resource_group, d.gallery_name, d.definition) if v.run_id == run_id
        ]


def promoted(emu: LocalAzure, version: str, image: str = IMAGE) -> bool:
    from image_factory.pipeline.build import load_definition

    d = load_definition(image)
    with gallery_hook(emu) as hook:
        return not hook.exclude_from_latest(d.gallery_resource_group, d.gallery_name, d.definition, version)


def kill_task_process(p: Pipeline, run_id: str, task_id: str) -> int:
    """SIGKILL the process running ``task_id`` now (the TI's pid), after checking our scheduler started it."""
    import signal

    import psutil

    ti = p.task(run_id, task_id)
    assert ti["state"] == "running" and ti["pid"], ti
    pid = int(ti["pid"])
    scheduler = p.stack.procs["scheduler"].pid
    assert scheduler in {a.pid for a in psutil.Process(pid).parents()}, f"pid {pid} is not one of our tasks"
    os.kill(pid, signal.SIGKILL)
    return pid
