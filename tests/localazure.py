"""Start and stop a local Azure (the emulator) as a real HTTPS server process, for tests and tools."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from devstack.localazure import free_port, lease_address_pool

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["ROOT", "STARTED", "LocalAzure", "free_port", "lease_address_pool"]


STARTED: list[LocalAzure] = []  # every start in this process, in order: which emulators did a test start?


class LocalAzure:
    """A running emulator process: its endpoint, CA, and the ``/_emulator`` operations API."""

    def __init__(self, state_dir: Path, *, port: int | None = None, time_factor: float = 0.0,
                 env: dict[str, str] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.port = port or free_port()
        self.time_factor = time_factor
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.state_dir / "emulator.log"
        self.linux_runtime: str | None = None  # as the running emulator reports it (health), once started
        self._pool: str | None = None
        self._pool_lease: Any = None  # an open, flock()ed file: the pool is ours while it stays open

    @property
    def configured_linux_runtime(self) -> str:
        """The Linux guest runtime the environment this instance starts with selects (the emulator's parse)."""
        from emulator.guests.qemu.runtime import linux_runtime_name

        return linux_runtime_name({**os.environ, **self.env})

    @property
    def address_pool(self) -> str:
        """Each instance its own loopback /16, so guests of two local Azures never share an address."""
        if self._pool is None:
            self._pool, self._pool_lease = lease_address_pool(self.port)
        return self._pool

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.state_dir / "tls" / "ca.pem")

    @property
    def info(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "endpoint.json").read_text())

    def start(self, timeout: float = 30.0) -> LocalAzure:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCAL_AZURE_ADDRESS_POOL": self.address_pool, **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "serve", "--state-dir", str(self.state_dir),
             "--port", str(self.port), "--time-factor", str(self.time_factor)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"local Azure exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                health = requests.get(self.endpoint + "/_emulator/health", verify=self.ca, timeout=2)
                if health.ok:
                    self.linux_runtime = health.json().get("linuxGuestRuntime")
                    STARTED.append(self)
                    return self
            except (requests.ConnectionError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"local Azure did not become healthy in {timeout}s: {self.log_path.read_text()[-2000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process this object started (by PID), forcefully if it will not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def restart(self, stop_timeout: float = 15.0, start_timeout: float = 30.0) -> None:
        self.stop(stop_timeout)
        self.start(start_timeout)

    # operations API ---------------------------------------------------------------
    def ops(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        resp = requests.request(method, f"{self.endpoint}/_emulator/{path.lstrip('/')}", json=body,
                                params=params, verify=self.ca, timeout=30)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} /_emulator/{path}: {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    def add_fault(self, **rule: Any) -> str:
        return str(self.ops("POST", "faults", rule)["id"])

    def clear_faults(self) -> None:
        self.ops("DELETE", "faults")

    def settings(self, **values: Any) -> Any:
        return self.ops("PATCH", "settings", values)

    def request_counts(self) -> dict[str, int]:
        return dict(self.ops("GET", "requests")["counts"])

    def hook(self, conn_id: str) -> Any:
        """The factory's ARM hook pointed at this instance through its own Airflow connection."""
        from image_factory.hooks.arm import AzureResourceManagerHook

        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = self.connection_uri_env()
        return AzureResourceManagerHook(conn_id)

    @contextmanager
    def connection(self, conn_id: str) -> Iterator[str]:
        """``AIRFLOW_CONN_<conn_id>`` pointing at this instance for the block; the previous value comes back."""
        key = f"AIRFLOW_CONN_{conn_id.upper()}"
        old = os.environ.get(key)
        os.environ[key] = self.connection_uri_env()
        try:
            yield conn_id
        finally:
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old

    def connection_uri_env(self) -> str:
        """The Airflow connection (JSON form) that points the factory's hook at this local Azure."""
        info = self.info
        return json.dumps({
            "conn_type": "azure",
            "login": "image-factory",
            "password": "local-secret",
            "extra": {
                "endpoint": self.endpoint,
                "ca_bundle": self.ca,
                "tenantId": info["tenant_id"],
                "subscriptionId": info["subscription_id"],
            },
        })
