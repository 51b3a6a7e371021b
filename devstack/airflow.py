"""Airflow's own components as processes on this machine: api-server, scheduler, dag-processor, triggerer.

The same topology as Airflow's docker-compose (without Docker): every component is a separate
process sharing one AIRFLOW_HOME, metadata DB, JWT secret and Fernet key, with the LocalExecutor
running tasks in the scheduler's worker processes (or, given docker-compose.yaml's Celery settings in
``extra_env`` and a ``"celery worker"`` component, the CeleryExecutor: tests/e2e/test_celery_deployment.py). The factory's Azure connection and build secret
are given as AIRFLOW_CONN_* / AIRFLOW_VAR_* environment entries, so no secret is stored in the
metadata DB. Processes are started with their PIDs recorded, and stopped by those PIDs only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN = "admin"
CONN_ID = "image_factory_azure"
SECRET_VARIABLE = "image_factory_build_secret"


def _venv_bin(name: str) -> str:
    import sys

    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def new_keys() -> dict[str, str]:
    """Fresh secrets for one deployment: Fernet key, JWT and API secrets, the factory's build secret."""
    from cryptography.fernet import Fernet

    return {"fernet_key": Fernet.generate_key().decode(), "jwt_secret": secrets.token_urlsafe(48),
            "api_secret_key": secrets.token_urlsafe(32), "build_secret": secrets.token_hex(32)}


def _keys(home: Path) -> dict[str, str]:
    """Secrets shared by the components, generated once per AIRFLOW_HOME (file mode 0600)."""
    path = home / "factory-keys.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    keys = new_keys()
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)
    return keys


@dataclass
class AirflowStack:
    """One local Airflow deployment rooted at ``home``."""

    home: Path
    port: int = 8080
    azure_connection: str = ""  # the factory's Azure connection (JSON or URI)
    parallelism: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pools: list[dict[str, Any]] = field(default_factory=list)  # the factory's pools as start() left them

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "pids.json"

    def env(self) -> dict[str, str]:
        keys = _keys(self.home)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            f"AIRFLOW_VAR_{SECRET_VARIABLE.upper()}": keys["build_secret"],
        }
        if self.azure_connection:
            env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = self.azure_connection
        env.update(self.extra_env)
        return env

    # processes ---------------------------------------------------------------------
    def log_path(self, component: str) -> Path:
        return self.home / f"{component.replace(' ', '-')}.log"

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "migrate.log", "ab") as log:
            subprocess.run([_venv_bin("airflow"), "db", "migrate"], env=self.env(), stdout=log,
                           stderr=subprocess.STDOUT, check=True, timeout=600)

    def start(self, components: Iterable[str] = COMPONENTS, timeout: float = 180.0) -> AirflowStack:
        self.migrate()
        env = self.env()
        for name in components:  # an Airflow sub-command: "scheduler", "celery worker"
            log = open(self.log_path(name), "ab")  # the child keeps writing to it
            self.procs[name] = subprocess.Popen([_venv_bin("airflow"), *name.split()], env=env, stdout=log,
                                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            log.close()
        self.pid_file.write_text(json.dumps({n: p.pid for n, p in self.procs.items()}))
        self.wait_healthy(timeout)
        try:
            self.pools = self.ensure_pools()
        except Exception:  # e.g. include/fleet.yaml sizes a pool below a VM: nothing is left running
            self.stop()
            raise
        return self

    def ensure_pools(self) -> list[dict[str, Any]]:
        """The factory's pools (include/fleet.yaml), created before any run needs them: a task in a pool
        that does not exist is never scheduled."""
        from devstack.fleet import factory_pools, include_dir, sync_pools

        return sync_pools(self, self.token(), factory_pools(include_dir(self.env())))

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    tail = self.log_path(name).read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{tail}")
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=3).json()
                watched = ["metadatabase"] + [k for k in ("scheduler", "triggerer") if k in self.procs]
                parts = [(health.get(k) or {}).get("status") for k in watched]
                if all(p == "healthy" for p in parts):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"Airflow did not become healthy within {timeout:.0f} s (logs in {self.home})")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every component this stack started (its process group, by the recorded PID)."""
        pids = {n: p.pid for n, p in self.procs.items()} or stop_pids_from(self.pid_file)
        stop_process_groups(pids.values(), timeout)
        self.procs.clear()
        self.pid_file.unlink(missing_ok=True)

    # REST API ------------------------------------------------------------------------
    def password(self) -> str:
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        return str(json.loads(generated.read_text())[ADMIN])

    def token(self) -> str:
        resp = requests.post(f"{self.url}/auth/token", json={"username": ADMIN, "password": self.password()},
                             timeout=30)
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return requests.request(method, f"{self.url}/api/v2/{path.lstrip('/')}", headers=headers, timeout=60,
                                **kwargs)

    def wait_for_dag(self, dag_id: str, token: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api("GET", f"dags/{dag_id}", token).status_code == 200:
                return
            time.sleep(1)
        raise RuntimeError(f"DAG {dag_id} was not parsed within {timeout:.0f} s (see {self.home}/dag-processor.log)")

    def trigger(self, dag_id: str, conf: dict[str, Any], token: str) -> str:
        """Unpause and trigger; the new run's id."""
        self.api("PATCH", f"dags/{dag_id}", token, json={"is_paused": False}).raise_for_status()
        resp = self.api("POST", f"dags/{dag_id}/dagRuns", token, json={"logical_date": None, "conf": conf})
        resp.raise_for_status()
        return str(resp.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str, token: str) -> str:
        resp = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}", token)
        resp.raise_for_status()
        return str(resp.json()["state"])

    def task_instances(self, dag_id: str, run_id: str, token: str) -> list[dict[str, Any]]:
        resp = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", token, params={"limit": 200})
        resp.raise_for_status()
        return list(resp.json()["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, token: str, map_index: int = -1) -> Any:
        resp = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
                        token, params={"map_index": map_index, "deserialize": True})
        resp.raise_for_status()
        return resp.json()["value"]


def stop_pids_from(pid_file: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(pid_file.read_text()).items()}
    except (OSError, ValueError):
        return {}


def stop_process_groups(pids: Iterable[int], timeout: float) -> None:
    """SIGTERM each process group we started (each component leads its own), then SIGKILL stragglers."""
    pids = list(pids)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone once reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
