"""A fleet of generated image definitions under real Airflow processes, and what its rebuild shows.

``write_fleet`` writes N Linux definitions (the shipped scripts, pinned by checksum; names, regions
and VM sizes varied) and a fleet.yaml into a temporary include folder; ``running_fleet`` starts a
local Azure on simulated guests with each region's vCPU quota set to its pool, and an AirflowStack
whose DAGs read that folder (its pools created at start). ``PoolWatch`` samples ``/api/v2/pools``
while a rebuild runs; the functions below read runs and task instances back through the REST API.
Used by tests/e2e/test_fleet_rebuild.py and bench/fleet_run.py.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from devstack.airflow import AirflowStack
from tests.e2e.airflow_pipeline import FAST_FAILURE_DETECTION, own_log_server_ports
from tests.localazure import ROOT, LocalAzure, free_port

SIZES = ("Standard_D2s_v5", "Standard_D4s_v5")  # build VMs alternate: 2 and 4 vCPUs
SMOKE_SIZE = "Standard_B2s"
FINISHED = {"success", "failed"}


@dataclass(frozen=True)
class RegionPlan:
    images: int  # definitions building in this region
    vcpus: int  # the region's vCPU quota in the local Azure, and its vCPU pool
    builds: int  # its builds pool


@dataclass
class Fleet:
    emu: LocalAzure
    stack: AirflowStack
    token: str
    images: dict[str, str]  # image name → build region
    plan: dict[str, RegionPlan]

    @property
    def dag_ids(self) -> list[str]:
        return [f"golden_{name}" for name in sorted(self.images)]

    def renew_token(self) -> str:
        self.token = self.stack.token()
        return self.token


def write_fleet(include: Path, plan: dict[str, RegionPlan], *, quota_retry_seconds: float = 5.0,
                poll_seconds: int = 2) -> dict[str, str]:
    """Definitions ``fleet-<region>-NN`` and a fleet.yaml sized by ``plan``: image name → region."""
    shutil.copytree(ROOT / "include" / "scripts", include / "scripts")
    (include / "images").mkdir(parents=True)
    scripts = [{"path": p, "sha256": hashlib.sha256((include / "scripts" / p).read_bytes()).hexdigest()}
               for p in ("linux/10-baseline.sh", "linux/20-nginx.sh")]
    images: dict[str, str] = {}
    n = 0
    for region, rp in sorted(plan.items()):
        for i in range(rp.images):
            name = f"fleet-{region}-{i:02d}"
            images[name] = region
            definition = {
                "name": name, "description": f"Fleet member {i} built in {region}.", "owner": "platform-team",
                "tags": ["fleet"],
                "gallery": {"resource_group": f"rg-fleet-{region}", "name": f"gal_fleet_{region}", "location": region},
                "image": {"definition": name, "publisher": "GoldenFactory", "offer": "fleet", "sku": name,
                          "os_type": "Linux", "os_state": "Generalized", "hyper_v_generation": "V2"},
                "source": {"marketplace": {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2",
                                           "version": "latest"}},
                "build": {"location": region, "vm_size": SIZES[n % len(SIZES)], "scripts": scripts},
                "smoke": {"vm_size": SMOKE_SIZE, "checks": [
                    {"name": "release marker", "command": "cat /etc/golden-image/release",
                     "expect_output": f"image={name}"}]},
                "replication": {"regions": [{"name": region, "replicas": 1}], "timeout_minutes": 30},
                "outputs": {"gallery_version": True},
                "end_of_life": {"days": 30},
            }
            (include / "images" / f"{name}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
            n += 1
    fleet = {"defaults": {"vcpus": 4, "builds": 1},
             "regions": {r: {"vcpus": rp.vcpus, "builds": rp.builds} for r, rp in plan.items()},
             "quota_wait": {"retry_seconds": quota_retry_seconds, "max_minutes": 30},
             "rebuild": {"poll_seconds": poll_seconds}}
    (include / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    return images


@contextmanager
def running_fleet(tmp: Path, plan: dict[str, RegionPlan], *, time_factor: float = 0.02, parallelism: int = 8,
                  quota_retry_seconds: float = 5.0) -> Iterator[Fleet]:
    """The local Azure (quotas = the pools) and Airflow reading a generated include folder; both stopped by PID."""
    images = write_fleet(tmp / "include", plan, quota_retry_seconds=quota_retry_seconds)
    emu = LocalAzure(tmp / "azure", time_factor=time_factor, env={"LOCAL_AZURE_LINUX_RUNTIME": "simulated"})
    emu.start(timeout=60)
    stack = AirflowStack(
        tmp / "airflow", port=free_port(), azure_connection=emu.connection_uri_env(), parallelism=parallelism,
        extra_env={**FAST_FAILURE_DETECTION, **own_log_server_ports(),
                   "IMAGE_FACTORY_INCLUDE": str(tmp / "include"),
                   "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32"},
    )
    try:
        for region, rp in plan.items():
            emu.ops("PUT", f"quotas/{region}", {"cores": rp.vcpus})
            emu.ops("DELETE", f"quotas/{region}/highWater")
        stack.start(timeout=300)
        token = stack.token()
        for dag_id in ["fleet_rebuild", *[f"golden_{n}" for n in sorted(images)]]:
            stack.wait_for_dag(dag_id, token, timeout=300)
        yield Fleet(emu, stack, token, images, plan)
    finally:
        try:
            stack.stop()
        finally:
            emu.stop(timeout=120)


class PoolWatch:
    """Samples the factory's pools once a second in a thread: the most slots seen in each state; and
    counts the VM creates and starts the local Azure refused for the vCPU quota (409 OperationNotAllowed)."""

    STATES = ("running_slots", "deferred_slots", "queued_slots", "scheduled_slots", "occupied_slots")
    VM_WRITES = ("Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/start/action")

    def __init__(self, stack: AirflowStack, token: str, emu: LocalAzure, interval: float = 1.0) -> None:
        self.stack, self.token, self.emu, self.interval = stack, token, emu, interval
        self.most: dict[str, dict[str, int]] = {}
        self.slots: dict[str, int] = {}
        self.samples = 0
        self.starved: dict[str, int] = {}  # samples in which a pool's waiting tasks asked for more than it had open
        self.refusals = 0
        self.refused: list[str] = []  # the paths of the refused writes: which VM, in which run's group
        self._seq = int(emu.ops("GET", "requests")["total"])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pool-watch", daemon=True)

    def __enter__(self) -> PoolWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)
        self.sample()  # the requests after the last sample

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # a slow answer under load: the next sample counts
                pass
            self._stop.wait(self.interval)

    def sample(self) -> None:
        pools = self.stack.api("GET", "pools", self.token, params={"limit": 1000}).json()["pools"]
        for p in pools:
            if not p["name"].startswith("image_factory_"):
                continue
            self.slots[p["name"]] = int(p["slots"])
            most = self.most.setdefault(p["name"], dict.fromkeys(self.STATES, 0))
            for state in self.STATES:
                most[state] = max(most[state], int(p[state]))
            waiting = int(p["scheduled_slots"]) > max(0, int(p["open_slots"]))
            self.starved[p["name"]] = self.starved.get(p["name"], 0) + int(waiting)
        self.samples += 1
        log = self.emu.ops("GET", "requests", since=self._seq)  # the log is bounded: read it as it grows
        refused = [e["path"] for e in log["entries"] if e["status"] == 409 and e["operation"] in self.VM_WRITES]
        self.refusals += len(refused)
        self.refused += refused
        self._seq = int(log["total"])


def wait_for_run(stack: AirflowStack, dag_id: str, run_id: str, token: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.api("GET", f"dags/{dag_id}/dagRuns/{run_id}", token).json()
        if run["state"] in FINISHED:
            return dict(run)
        time.sleep(3)
    raise AssertionError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s")


def runs(stack: AirflowStack, dag_id: str, token: str) -> list[dict[str, Any]]:
    resp = stack.api("GET", f"dags/{dag_id}/dagRuns", token, params={"limit": 100, "order_by": "run_after"})
    resp.raise_for_status()
    return list(resp.json()["dag_runs"])


def task_instances(stack: AirflowStack, dag_id: str, run_id: str, token: str) -> list[dict[str, Any]]:
    return stack.task_instances(dag_id, run_id, token)


def ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


@dataclass
class Overlap:
    most: int = 0
    at: float | None = None
    spans: list[tuple[float, float, int]] = field(default_factory=list)


def most_at_once(spans: Iterable[tuple[float, float, int]]) -> Overlap:
    """The largest sum of weights of spans [start, end) open at one instant (ends close before starts open)."""
    spans = [s for s in spans if s[1] > s[0]]
    events = sorted([(a, 1, w) for a, _b, w in spans] + [(b, 0, -w) for _a, b, w in spans])
    now, out = 0, Overlap(spans=spans)
    for t, _kind, w in events:
        now += w
        if now > out.most:
            out.most, out.at = now, t
    return out
