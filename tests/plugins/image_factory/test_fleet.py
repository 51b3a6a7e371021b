"""Fleet limits (pure): vCPUs per VM size, fleet.yaml's rules, the pools the DAGs need, the quota wait."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from image_factory import fleet
from image_factory.definitions import load_file

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("size", "vcpus"), [
    ("Standard_D2s_v5", 2), ("Standard_D4s_v5", 4), ("Standard_B2s", 2), ("Standard_B1ms", 1),
    ("Standard_D16ads_v5", 16), ("Standard_E8-2s_v5", 2), ("Standard_DS3_v2", 4), ("Standard_F8s_v2", 8),
    ("Basic_A1", 1),
])
def test_vcpus_from_the_size_name(size: str, vcpus: int) -> None:
    assert fleet.vcpus(size) == vcpus


def test_vcpus_of_an_unreadable_size_come_from_fleet_yaml() -> None:
    with pytest.raises(fleet.FleetConfigError, match=r"add it to fleet\.yaml vm_vcpus"):
        fleet.vcpus("Standard_Weird")
    assert fleet.vcpus("Standard_Weird", {"Standard_Weird": 6}) == 6


def test_the_shipped_fleet_yaml_sizes_pools_for_every_build_region() -> None:
    config = fleet.load(ROOT / "include")
    assert config is not None
    definitions = [load_file(p) for p in sorted((ROOT / "include" / "images").glob("*.yaml"))]
    pools = {p.name: p for p in fleet.pools(config, definitions)}
    regions = {d.build_location for d in definitions}
    assert set(pools) == {fleet.vcpu_pool(r) for r in regions} | {fleet.builds_pool(r) for r in regions}
    assert all(p.include_deferred for p in pools.values())  # a deferred wait keeps its VM, so its slots
    assert pools[fleet.vcpu_pool("westeurope")].slots == config.limits("westeurope").vcpus


def test_broken_rules_are_reported_by_field() -> None:
    with pytest.raises(fleet.FleetConfigError) as exc:
        fleet.parse({"defaults": {"vcpus": 0, "builds": 2}, "regions": {"westeurope": {"cores": 4}}, "extra": 1})
    text = str(exc.value)
    assert "fleet.yaml: defaults.vcpus: 0 is less than the minimum of 1" in text
    assert "fleet.yaml: regions.westeurope: Additional properties are not allowed ('cores'" in text
    assert "fleet.yaml: (top level): Additional properties are not allowed ('extra'" in text


class Image:
    def __init__(self, name: str, region: str, size: str, smoke: str = "Standard_B2s") -> None:
        self.name, self.build_location, self.vm_size, self.smoke_vm_size = name, region, size, smoke


def test_a_vcpu_pool_smaller_than_a_vm_is_refused_since_its_tasks_would_never_run() -> None:
    config = fleet.parse({"defaults": {"vcpus": 8, "builds": 2}, "regions": {"eastus": {"vcpus": 2}}})
    images: list[Any] = [Image("web", "westeurope", "Standard_D8s_v5"), Image("win", "eastus", "Standard_D4s_v5")]
    with pytest.raises(fleet.FleetConfigError, match=r"regions\.eastus\.vcpus: 2 is less than the 4 vCPUs of "
                                                     r"Standard_D4s_v5 of images/win\.yaml"):
        fleet.pools(config, images)
    sizes = {p.name: p.slots for p in fleet.pools(config, images[:1])}
    assert sizes == {"image_factory_vcpus_westeurope": 8, "image_factory_builds_westeurope": 2}


def test_vm_tasks_take_vcpu_slots_and_later_tasks_outrank_earlier_ones() -> None:
    config = fleet.parse({"defaults": {"vcpus": 8, "builds": 2}})
    assert fleet.build_vm_pool(config, "northeurope", "Standard_D4s_v5") == {
        "pool": "image_factory_vcpus_northeurope", "pool_slots": 4, "weight_rule": "upstream"}
    assert fleet.build_vm_pool(None, "northeurope", "Standard_D4s_v5") == {}  # no fleet.yaml: no pools


def test_a_task_refused_by_the_quota_waits_a_bounded_number_of_times() -> None:
    config = fleet.parse({"defaults": {"vcpus": 8, "builds": 2}, "quota_wait": {"retry_seconds": 30,
                                                                                "max_minutes": 2}})
    assert [fleet.quota_wait(config, n) for n in range(5)] == [30, 30, 30, 30, None]
