"""The local Azure (the emulator) as a server process: started, found again by its pid file, and stopped.

Tests start one per session in a temp dir (tests/localazure.py) and stop it with themselves; the
main job starts one detached, records its PID, and a later command reuses or stops it by that PID.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parents[1]
PID_FILE = "devstack-emulator.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lease_address_pool(port: int) -> tuple[str, IO[str]]:
    """A loopback /16 no other live local Azure on this machine holds (any process, via flock).

    The lease is an exclusive lock on a file named after the pool; it ends when every descriptor of
    that open file is closed, which the kernel does if the holder dies, so a crash never strands a pool.
    """
    leases = Path(tempfile.gettempdir()) / "local-azure-address-pools"
    leases.mkdir(exist_ok=True)
    for i in range(150):
        octet = 101 + (port + i) % 150
        handle = open(leases / f"127.{octet}.lock", "a")  # held open on purpose: it is the lease
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return f"127.{octet}.0.0/16", handle
    raise RuntimeError("every loopback address pool (127.101-250) is held by another local Azure")


def connection_json(state_dir: Path) -> str:
    """The Airflow connection (JSON form) that points the factory's hook at the local Azure in ``state_dir``."""
    info = json.loads((state_dir / "endpoint.json").read_text())
    return json.dumps(
        {
            "conn_type": "azure",
            "login": "image-factory",
            "password": "local-secret",
            "extra": {
                "endpoint": info["endpoint"],
                "ca_bundle": info["ca_bundle"],
                "tenantId": info["tenant_id"],
                "subscriptionId": info["subscription_id"],
            },
        }
    )


def health(port: int, ca: Path) -> dict[str, Any] | None:
    """The emulator's health answer, or None when nothing healthy answers on ``port``."""
    try:
        resp = requests.get(f"https://127.0.0.1:{port}/_emulator/health", verify=str(ca), timeout=2)
        return dict(resp.json()) if resp.ok else None
    except (requests.RequestException, OSError, ValueError):
        return None


def spawn(
    state_dir: Path,
    port: int,
    time_factor: float,
    env: dict[str, str],
    *,
    pool_lease: IO[str] | None,
    pool: str,
    detach: bool,
) -> subprocess.Popen[bytes]:
    """Start ``python -m emulator serve``; a detached one leads its own session and holds the pool lease itself."""
    state_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCAL_AZURE_ADDRESS_POOL": pool, **env}
    with open(state_dir / "emulator.log", "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulator",
                "serve",
                "--state-dir",
                str(state_dir),
                "--port",
                str(port),
                "--time-factor",
                str(time_factor),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=detach,
            pass_fds=(pool_lease.fileno(),) if detach and pool_lease else (),
        )


def wait_healthy(proc: subprocess.Popen[bytes], state_dir: Path, port: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "emulator.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"local Azure exited with {proc.returncode}: {tail}")
        found = health(port, state_dir / "tls" / "ca.pem")
        if found is not None:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"local Azure did not become healthy in {timeout:.0f} s (log: {state_dir / 'emulator.log'})")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a child of ours that exited is a zombie until reaped: reap it, it is gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


class DetachedLocalAzure:
    """The main job's local Azure: one per state dir, found again by ``<state>/devstack-emulator.json``."""

    def __init__(
        self, state_dir: Path, port: int = 8443, time_factor: float = 0.05, env: dict[str, str] | None = None
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.time_factor = time_factor
        self.env = env or {}

    @property
    def pid_file(self) -> Path:
        return self.state_dir / PID_FILE

    @property
    def ca(self) -> Path:
        return self.state_dir / "tls" / "ca.pem"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def recorded(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.pid_file.read_text()))
        except (OSError, ValueError):
            return {}

    def running_pid(self) -> int | None:
        """The recorded PID if that process is still our emulator (its command line names our state dir)."""
        pid = self.recorded().get("pid")
        if not isinstance(pid, int) or not pid_alive(pid):
            return None
        args = cmdline(pid)
        return pid if "emulator" in args and str(self.state_dir) in args else None

    def status(self) -> dict[str, Any] | None:
        """PID, port and health of the running emulator, or None when it is not running."""
        pid = self.running_pid()
        if pid is None:
            return None
        port = int(self.recorded().get("port", self.port))
        return {"pid": pid, "port": port, "health": health(port, self.ca)}

    def ensure_started(self, timeout: float = 60.0) -> tuple[dict[str, Any], bool]:
        """(status, started_now): reuse a healthy recorded emulator, else start one detached."""
        found = self.status()
        if found is not None and found["health"] is not None:
            self.port = found["port"]
            return found, False
        if found is not None:  # alive but not answering: ours, so stop it before starting afresh
            self.stop()
        pool, lease = lease_address_pool(self.port)
        try:
            proc = spawn(
                self.state_dir, self.port, self.time_factor, self.env, pool_lease=lease, pool=pool, detach=True
            )
        finally:
            lease.close()  # the emulator holds its own descriptor of the lease now
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "port": self.port}))
        try:
            answer = wait_healthy(proc, self.state_dir, self.port, timeout)
        except RuntimeError:
            self.stop()
            raise
        return {"pid": proc.pid, "port": self.port, "health": answer}, True

    def guest_pids(self) -> list[int]:
        """QEMU processes running a VM of this local Azure (their pidfiles under ``<state>/guests``)."""
        from emulator.guests.qemu.runtime import qemu_pid_for

        root = self.state_dir / "guests"
        if not root.is_dir():
            return []
        return [pid for d in sorted(root.iterdir()) if d.is_dir() and (pid := qemu_pid_for(d)) is not None]

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM the recorded emulator (it powers its QEMU guests off on the way out), SIGKILL if it hangs.

        Returns what was stopped and any guest that outlived the emulator (then killed by its PID)."""
        pid = self.running_pid()
        guests = self.guest_pids()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        leftovers = [g for g in guests if pid_alive(g)] + [g for g in self.guest_pids() if g not in guests]
        for guest in leftovers:
            try:
                os.kill(guest, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_file.unlink(missing_ok=True)
        return {"pid": pid, "guests": guests, "guests_killed": leftovers}
