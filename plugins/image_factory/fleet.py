"""Fleet limits: Azure's regional vCPU quota and concurrent builds per region as Airflow pools (pure).

``include/fleet.yaml`` sizes two pools per region the image definitions build in:

- ``image_factory_vcpus_<region>``: the vCPUs the factory may hold there at once. Every task during
  which a factory VM holds a machine takes as many slots as its VM size has vCPUs: the build VM from
  ``provision_vm`` to ``deallocate``, the smoke VMs in ``smoke_test`` (create, checks, delete).
  Deferred waits keep their slots (the pool counts deferred tasks).
- ``image_factory_builds_<region>``: image builds a fleet rebuild runs there at once. The fleet DAG's
  trigger task for each image holds one slot, deferred, for its image run's whole life.

An Airflow task sits in exactly one pool, and a pool slot is held by a task, never across two: the
build VM still holds its machine in the moment between two of its tasks, and a mapped smoke test
takes the build region's pool whichever region its VM is in. So the pools keep the factory within
the quota nearly always, not by construction; ARM's quota refusal (409 OperationNotAllowed) is the
backstop, and a task it refuses waits and tries again (``quota_wait``) instead of failing.
Nothing here imports Airflow or talks to Azure: the DAG factory and the pools command both use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

VCPU_POOL_PREFIX = "image_factory_vcpus_"
BUILDS_POOL_PREFIX = "image_factory_builds_"
CONFIG_FILE = "fleet.yaml"

_COUNT = {"type": "integer", "minimum": 1, "maximum": 100000}
_LIMITS = {"type": "object", "additionalProperties": False, "properties": {"vcpus": _COUNT, "builds": _COUNT}}
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "defaults": {**_LIMITS, "required": ["vcpus", "builds"]},
        "regions": {"type": "object", "additionalProperties": _LIMITS},
        "quota_wait": {"type": "object", "additionalProperties": False, "properties": {
            "retry_seconds": {"type": "number", "minimum": 1, "maximum": 3600},
            "max_minutes": {"type": "number", "minimum": 1, "maximum": 10080}}},
        "rebuild": {"type": "object", "additionalProperties": False, "properties": {
            "poll_seconds": {"type": "integer", "minimum": 1, "maximum": 3600}}},
        "vm_vcpus": {"type": "object", "additionalProperties": _COUNT},
    },
    "required": ["defaults"],
}
_VALIDATOR = Draft202012Validator(SCHEMA)

# Sizes whose name does not carry their vCPUs (older naming): Azure's published counts.
OLD_NAMING = {f"Standard_DS{k}_v2": n for k, n in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 16))} | {
    f"Standard_D{k}_v2": n for k, n in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 16))}
SIZE_NAME = re.compile(r"^(?:Standard|Basic)_[A-Z]+(\d+)(?:-(\d+))?[a-z]*(?:_v\d+)?(?:_Promo)?$")


class FleetConfigError(ValueError):
    """A broken rule in fleet.yaml, or pools that cannot work for the definitions (``file: field: rule``)."""


@dataclass(frozen=True)
class RegionLimits:
    vcpus: int
    builds: int


@dataclass(frozen=True)
class PoolSpec:
    name: str
    slots: int
    description: str
    include_deferred: bool = True  # a deferred wait keeps its VM, so it keeps its slots


@dataclass(frozen=True)
class Fleet:
    defaults: RegionLimits
    regions: dict[str, RegionLimits] = field(default_factory=dict)
    retry_seconds: float = 60.0
    max_wait_minutes: float = 360.0
    poll_seconds: int = 15
    vm_vcpus: dict[str, int] = field(default_factory=dict)

    def limits(self, region: str) -> RegionLimits:
        return self.regions.get(region, self.defaults)

    def vcpus(self, size: str) -> int:
        return vcpus(size, self.vm_vcpus)


def vcpu_pool(region: str) -> str:
    return VCPU_POOL_PREFIX + region


def builds_pool(region: str) -> str:
    return BUILDS_POOL_PREFIX + region


def vcpus(size: str, overrides: dict[str, int] | None = None) -> int:
    """vCPUs of an Azure VM size: fleet.yaml's ``vm_vcpus``, the old-naming table, else the name
    (``Standard_D4s_v5`` → 4; constrained ``Standard_E8-2s_v5`` → 2)."""
    if overrides and size in overrides:
        return int(overrides[size])
    if size in OLD_NAMING:
        return OLD_NAMING[size]
    m = SIZE_NAME.match(size)
    if m is None:
        raise FleetConfigError(f"VM size {size!r}: its vCPUs cannot be read from the name; "
                               f"add it to {CONFIG_FILE} vm_vcpus")
    return int(m.group(2) or m.group(1))


def parse(data: Any, source: str = CONFIG_FILE) -> Fleet:
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise FleetConfigError("\n".join(
            f"{source}: {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors))
    defaults = data["defaults"]
    base = RegionLimits(int(defaults["vcpus"]), int(defaults["builds"]))
    regions = {name: RegionLimits(int(r.get("vcpus", base.vcpus)), int(r.get("builds", base.builds)))
               for name, r in (data.get("regions") or {}).items()}
    wait, rebuild = data.get("quota_wait") or {}, data.get("rebuild") or {}
    return Fleet(base, regions, float(wait.get("retry_seconds", 60)), float(wait.get("max_minutes", 360)),
                 int(rebuild.get("poll_seconds", 15)), {k: int(v) for k, v in (data.get("vm_vcpus") or {}).items()})


def load(include: Path) -> Fleet | None:
    """``<include>/fleet.yaml``, or None when there is none (then no task takes a factory pool)."""
    path = include / CONFIG_FILE
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise FleetConfigError(f"{CONFIG_FILE}: not valid YAML: {exc}") from None
    return parse(data)


# what the DAGs ask for -------------------------------------------------------------------------
def build_vm_pool(fleet: Fleet | None, region: str, size: str) -> dict[str, Any]:
    """Task arguments for a task during which a VM of ``size`` holds a machine in ``region``.

    ``weight_rule="upstream"``: in a pool, later tasks of a build outrank earlier ones, so builds
    already holding VMs finish before new ones start theirs.
    """
    if fleet is None:
        return {}
    return {"pool": vcpu_pool(region), "pool_slots": fleet.vcpus(size), "weight_rule": "upstream"}


def pools(fleet: Fleet, definitions: Iterable[Any]) -> list[PoolSpec]:
    """The pools the definitions' DAGs and the fleet DAG use, sized from fleet.yaml.

    Raises FleetConfigError when a region's vCPU pool is smaller than one of its VMs: Airflow never
    runs a task that asks for more slots than its pool has.
    """
    needs: dict[str, list[tuple[int, str]]] = {}
    for d in definitions:
        for size in (d.vm_size, d.smoke_vm_size):
            needs.setdefault(d.build_location, []).append((fleet.vcpus(size), f"{size} of images/{d.name}.yaml"))
    out, problems = [], []
    for region in sorted(needs):
        limits = fleet.limits(region)
        biggest, what = max(needs[region])
        if biggest > limits.vcpus:
            problems.append(f"{CONFIG_FILE}: regions.{region}.vcpus: {limits.vcpus} is less than the {biggest} vCPUs "
                            f"of {what}: its tasks would never run")
        out.append(PoolSpec(vcpu_pool(region), limits.vcpus,
                            f"vCPUs the image factory may hold in {region} (its share of the regional vCPU quota)"))
        out.append(PoolSpec(builds_pool(region), limits.builds,
                            f"image builds a fleet rebuild runs in {region} at once"))
    if problems:
        raise FleetConfigError("\n".join(problems))
    return out


def quota_wait(fleet: Fleet | None, waits_so_far: int) -> float | None:
    """Seconds until a task refused by the quota tries again, or None once it has waited long enough."""
    retry = fleet.retry_seconds if fleet else 60.0
    most = fleet.max_wait_minutes if fleet else 360.0
    if waits_so_far >= max(1, math.floor(most * 60 / retry)):
        return None
    return retry
