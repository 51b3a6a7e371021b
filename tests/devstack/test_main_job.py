"""The README's main job (`python -m devstack run`, what `./factory run` ends with), as a user runs it.

Real processes throughout: the CLI in a subprocess starts a detached local Azure (simulated guests)
and Airflow's components in temp dirs on free ports, triggers the Linux generalized image's DAG and
prints its summary; a second run reuses both; `down` leaves no process of ours behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devstack.localazure import free_port, pid_alive
from tests.localazure import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.guests("simulated")]


@dataclass
class Deployment:
    state_dir: Path
    airflow_home: Path
    azure_port: int
    airflow_port: int

    def cli(self, command: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        args = [
            sys.executable,
            "-m",
            "devstack",
            command,
            "--state-dir",
            str(self.state_dir),
            "--airflow-home",
            str(self.airflow_home),
            "--azure-port",
            str(self.azure_port),
            "--airflow-port",
            str(self.airflow_port),
            "--time-factor",
            "0",
        ]
        env = {**os.environ, "LOCAL_AZURE_LINUX_RUNTIME": "simulated", "PYTHONPATH": str(ROOT)}
        env.pop("AIRFLOW_HOME", None)  # the tests' own Airflow home must not leak into the deployment
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

    def recorded_pids(self) -> dict[str, int]:
        pids: dict[str, int] = {}
        emulator = self.state_dir / "devstack-emulator.json"
        if emulator.exists():
            pids["local-azure"] = int(json.loads(emulator.read_text())["pid"])
        airflow = self.airflow_home / "pids.json"
        if airflow.exists():
            pids.update({k: int(v) for k, v in json.loads(airflow.read_text()).items()})
        return pids


def processes_of_ours(root: Path, groups: set[int]) -> list[str]:
    """Live processes whose command line names our temp dir or that belong to a process group we started."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            pgid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if cmd and (str(root) in cmd or pgid in groups) and pid_alive(int(proc.name)):
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, real_azure: str | None) -> Iterator[Deployment]:
    if real_azure:
        pytest.skip("the main job runs against the local Azure")
    root = tmp_path_factory.mktemp("main-job")
    d = Deployment(root / "local-azure", root / "airflow", free_port(), free_port())
    try:
        yield d
    finally:
        d.cli("down", timeout=180)


@pytest.mark.timeout(1200)
def test_run_publishes_prints_the_summary_and_a_second_run_reuses_everything(deployment: Deployment) -> None:
    first = deployment.cli("run")
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-4000:]
    assert re.search(r"Id:\s+/subscriptions/.+/galleries/gal_golden/images/debian12-web/versions/1\.0\.0", out), out
    for region in ("westeurope", "eastus"):
        assert re.search(rf"^  {region}\s+Completed 100%", out, re.M), out
        assert f"  {region}: PASS" in out
    assert "PASS build user gone" in out
    assert "FAIL" not in out
    assert "replication to westeurope" in out  # progress while replicate ran
    for stage in ("provision_vm", "customise", "replicate", "smoke_test"):
        assert re.search(rf"^  {stage}\s+\d+\.\d s$", out, re.M), f"no timing for {stage}:\n{out}"
    assert re.search(r"Total:\s+\d+\.\d s", out)
    assert f"Airflow UI: http://127.0.0.1:{deployment.airflow_port}  (user admin, password " in out
    assert "./factory stop" in out

    pids = deployment.recorded_pids()
    assert set(pids) == {"local-azure", "api-server", "scheduler", "dag-processor", "triggerer"}
    assert all(pid_alive(p) for p in pids.values())
    status = deployment.cli("status", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"local Azure: running, PID {pids['local-azure']}" in status.stdout
    assert f"Airflow: running, http://127.0.0.1:{deployment.airflow_port}" in status.stdout

    second = deployment.cli("run")
    out2 = second.stdout + second.stderr
    assert second.returncode == 0, out2[-4000:]
    assert "Reusing the local Azure" in out2 and "Reusing Airflow" in out2
    assert "Started the local Azure" not in out2 and "Starting Airflow" not in out2
    assert re.search(r"Id:\s+/subscriptions/.+/versions/1\.0\.1", out2), out2
    assert deployment.recorded_pids() == pids


def test_a_failed_run_exits_non_zero_naming_the_task_and_its_log(deployment: Deployment) -> None:
    up = deployment.cli("up")
    assert up.returncode == 0, up.stdout + up.stderr
    endpoint = f"https://127.0.0.1:{deployment.azure_port}/_emulator/faults"
    ca = str(deployment.state_dir / "tls" / "ca.pem")
    rule = {
        "match": "Microsoft.Compute/galleries/images/versions/write",
        "status": 400,
        "code": "InvalidParameter",
        "message": "injected by the main job test",
    }
    requests.post(endpoint, json=rule, verify=ca, timeout=30).raise_for_status()
    try:
        failed = deployment.cli("run")
    finally:
        requests.delete(endpoint, verify=ca, timeout=30).raise_for_status()
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out[-4000:]
    assert "==> The run failed: capture" in out
    assert "--- end of the log of capture" in out
    assert "injected by the main job test" in out  # the end of the task's log, from Airflow's REST API
    assert "Airflow UI:" in out


def test_the_pools_exist_from_the_start_and_the_fleet_view_shows_them_and_each_image(deployment: Deployment) -> None:
    from image_factory import fleet

    config = fleet.load(ROOT / "include")
    assert config is not None
    vcpus, builds = config.limits("westeurope").vcpus, config.limits("westeurope").builds
    pools = deployment.cli("pools", timeout=120)
    assert pools.returncode == 0, pools.stdout + pools.stderr
    assert f"image_factory_vcpus_westeurope: {vcpus} slots (unchanged)" in pools.stdout  # made when Airflow started
    assert f"image_factory_builds_westeurope: {builds} slots (unchanged)" in pools.stdout
    view = deployment.cli("fleet", timeout=120)
    assert view.returncode == 0, view.stdout + view.stderr
    assert re.search(rf"image_factory_vcpus_westeurope\s+0 /\s+0 /\s+0 /\s+0 of\s+{vcpus}, open {vcpus}", view.stdout)
    assert re.search(r"golden_debian12-web\s+failed ", view.stdout), view.stdout  # the last run: the failed one
    assert "MISSING" not in view.stdout and "Waiting task instances: none" in view.stdout


def test_down_stops_every_recorded_process_and_leaves_nothing(deployment: Deployment) -> None:
    up = deployment.cli("up")
    assert up.returncode == 0, up.stdout + up.stderr
    pids = deployment.recorded_pids()
    assert len(pids) == 5 and all(pid_alive(p) for p in pids.values())

    down = deployment.cli("down", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    assert processes_of_ours(deployment.state_dir.parent, set(pids.values())) == []
    assert not (deployment.state_dir / "devstack-emulator.json").exists()
    assert not (deployment.airflow_home / "pids.json").exists()
    assert not list((deployment.state_dir / "guests").glob("*/qemu.pid"))
    status = deployment.cli("status", timeout=60)
    assert status.returncode != 0 and "local Azure: not running" in status.stdout
