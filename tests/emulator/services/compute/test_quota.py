"""Regional vCPU quota through the real SDK: the Usages API, Azure's 409 on a create or start past a
limit, what counts (stopped VMs do, deallocated ones do not), and the high-water mark in the ops API."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.emulator.services.compute.conftest import Kit, error_of
from tests.localazure import LocalAzure

pytestmark = pytest.mark.guests("simulated")

REGION = "swedencentral"  # no other test builds here, so the session's other VMs do not move the numbers


@pytest.fixture
def location() -> str:
    return REGION


@pytest.fixture
def quotas(local_azure: LocalAzure) -> Iterator[LocalAzure]:
    """The emulator; the region's limits go back to the defaults after the test."""
    yield local_azure
    local_azure.ops("PUT", f"quotas/{REGION}", {})


def usages(kit: Kit) -> dict[str, Any]:
    return {u.name.value: u for u in kit.compute.usage.list(REGION)}


def cores(kit: Kit) -> int:
    return int(usages(kit)["cores"].current_value)


def test_usage_list_has_azure_shape_and_counts_what_holds_a_machine(kit: Kit) -> None:
    before = usages(kit)
    total = before["cores"]
    assert (total.unit, total.name.localized_value, total.limit) == ("Count", "Total Regional vCPUs", 1000)
    bs = before["standardBSFamily"]
    assert bs.name.localized_value == "Standard BS Family vCPUs"
    assert usages(kit)["standardDSv5Family"].name.localized_value == "Standard DSv5 Family vCPUs"
    assert {"availabilitySets", "virtualMachines", "virtualMachineScaleSets"} <= set(before)

    kit.linux_vm("counted")  # Standard_B2s: 2 vCPUs
    after = usages(kit)
    assert after["cores"].current_value == total.current_value + 2
    assert after["standardBSFamily"].current_value == bs.current_value + 2
    assert after["virtualMachines"].current_value == before["virtualMachines"].current_value + 1

    kit.compute.virtual_machines.begin_power_off(kit.group, "counted").result()
    assert cores(kit) == total.current_value + 2, "a stopped VM keeps its machine, so it still counts"
    kit.compute.virtual_machines.begin_deallocate(kit.group, "counted").result()
    now = usages(kit)
    assert now["cores"].current_value == total.current_value, "a deallocated VM holds no vCPUs"
    assert now["virtualMachines"].current_value == before["virtualMachines"].current_value + 1


QUOTA_MESSAGE = re.compile(
    r"Operation could not be completed as it results in exceeding approved (?P<quota>.+?) Cores quota\. "
    r"Additional details - Deployment Model: Resource Manager, Location: (?P<loc>\w+), Current Limit: (?P<limit>\d+), "
    r"Current Usage: (?P<usage>\d+), Additional Required: (?P<more>\d+), \(Minimum\) New Limit Required: "
    r"(?P<new>\d+)\. Submit a request for Quota increase at https://aka\.ms/ProdportalCRP/\S+ by specifying "
    r"parameters listed in the \u2018Details\u2019 section for deployment to succeed\. Please read more about quota "
    r"limits at https://docs\.microsoft\.com/en-us/azure/azure-supportability/per-vm-quota-requests$"
)


def refused(exc: pytest.ExceptionInfo[HttpResponseError]) -> dict[str, str]:
    status, code, message, _target = error_of(exc.value)
    assert (status, code) == (409, "OperationNotAllowed"), (status, code, message)
    found = QUOTA_MESSAGE.match(message)
    assert found, message
    return found.groupdict()


def test_create_and_start_past_the_regional_quota_are_refused_until_vcpus_free_up(kit: Kit, quotas: LocalAzure) -> None:
    base = cores(kit)
    quotas.ops("PUT", f"quotas/{REGION}", {"cores": base + 2})
    assert usages(kit)["cores"].limit == base + 2
    kit.linux_vm("first")
    nic = kit.nic("second-nic")
    with pytest.raises(HttpResponseError) as exc:
        kit.create("second", kit.linux_body(nic))
    assert refused(exc) == {"quota": "Total Regional", "loc": REGION, "limit": str(base + 2), "usage": str(base + 2),
                            "more": "2", "new": str(base + 4)}
    with pytest.raises(ResourceNotFoundError):
        kit.compute.virtual_machines.get(kit.group, "second")  # nothing was created

    kit.compute.virtual_machines.begin_deallocate(kit.group, "first").result()
    assert kit.create("second", kit.linux_body(nic)).provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as exc:  # a deallocated VM needs a machine again to start
        kit.compute.virtual_machines.begin_start(kit.group, "first").result()
    assert refused(exc)["usage"] == str(base + 2)
    kit.compute.virtual_machines.begin_delete(kit.group, "second").result()
    kit.compute.virtual_machines.begin_start(kit.group, "first").result()
    assert kit.power("first") == "PowerState/running"


def test_family_quota_is_checked_apart_from_the_regional_one(kit: Kit, quotas: LocalAzure) -> None:
    family = int(usages(kit)["standardDSv5Family"].current_value)
    quotas.ops("PUT", f"quotas/{REGION}", {"families": {"standardDSv5Family": family + 2}})
    body = kit.linux_body(kit.nic("d-one-nic"))
    body["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
    kit.create("d-one", body)
    second = kit.linux_body(kit.nic("d-two-nic"))
    second["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
    with pytest.raises(HttpResponseError) as exc:
        kit.create("d-two", second)
    assert refused(exc)["quota"] == "standardDSv5Family"
    assert kit.linux_vm("b-one").provisioning_state == "Succeeded"  # another family still has room


def test_concurrent_creates_never_exceed_the_limit_and_the_high_water_mark_shows_it(
    kit: Kit, quotas: LocalAzure
) -> None:
    base = cores(kit)
    quotas.ops("PUT", f"quotas/{REGION}", {"cores": base + 4})
    quotas.ops("DELETE", f"quotas/{REGION}/highWater")
    bodies = {f"burst{i}": kit.linux_body(kit.nic(f"burst{i}-nic")) for i in range(6)}
    outcomes: dict[str, str] = {}

    def create(name: str) -> None:
        try:
            kit.create(name, bodies[name])
            outcomes[name] = "created"
        except HttpResponseError as exc:
            outcomes[name] = str(exc.error.code if exc.error else exc.status_code)

    threads = [threading.Thread(target=create, args=(name,)) for name in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes.values()) == ["OperationNotAllowed"] * 4 + ["created"] * 2, outcomes
    view = quotas.ops("GET", f"quotas/{REGION}")
    assert view["highWater"]["cores"] == base + 4 and view["usage"]["cores"] == base + 4
    assert view["limits"]["cores"] == base + 4
    for name in [n for n, o in outcomes.items() if o == "created"][:1]:
        kit.compute.virtual_machines.begin_delete(kit.group, name).result()
    view = quotas.ops("GET", f"quotas/{REGION}")
    assert (view["usage"]["cores"], view["highWater"]["cores"]) == (base + 2, base + 4)
    assert any(v["location"] == REGION for v in quotas.ops("GET", "quotas")["value"])


def test_ops_api_refuses_bad_limits(quotas: LocalAzure) -> None:
    for body, words in [({"cores": -1}, "whole number"), ({"cores": "8"}, "whole number"),
                        ({"families": {"bogus": 4}}, "not a VM family quota name"), ({"vcpus": 8}, "Unknown field")]:
        with pytest.raises(RuntimeError, match="400") as exc:
            quotas.ops("PUT", f"quotas/{REGION}", body)
        assert words in str(exc.value), (body, exc.value)
    assert quotas.ops("PUT", f"quotas/{REGION}", {})["limits"]["cores"] == 1000
