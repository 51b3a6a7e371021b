"""Fault injection at runtime, observed through the real SDK and its own retry policy."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError


def _rg(arm, location="westus") -> str:
    name = f"fault-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(name, {"location": location})
    return name


def test_error_for_next_call_only(arm, faults):
    name = _rg(arm)
    faults.add_fault(match="Microsoft.Resources/subscriptions/resourceGroups/write", status=409,
                     code="InjectedConflict", message="Injected for a test.", count=1)
    with pytest.raises(HttpResponseError) as err:
        arm.resources.resource_groups.create_or_update(name, {"location": "westus"})
    assert err.value.status_code == 409 and err.value.error.code == "InjectedConflict"
    assert arm.resources.resource_groups.create_or_update(name, {"location": "westus"}).name == name
    assert faults.ops("GET", "faults")["value"] == []


def test_sdk_retries_a_transient_500_on_get(arm, faults):
    name = _rg(arm)
    before = faults.request_counts().get("Microsoft.Resources/subscriptions/resourceGroups/read", 0)
    faults.add_fault(match="Microsoft.Resources/subscriptions/resourceGroups/read", status=500, count=1)
    assert arm.resources.resource_groups.get(name).name == name
    after = faults.request_counts()["Microsoft.Resources/subscriptions/resourceGroups/read"]
    assert after - before == 2


def test_retry_after_is_honoured_for_posts_and_puts(arm, faults):
    name = _rg(arm)
    faults.add_fault(match="PUT */resourcegroups/" + name, status=429, code="TooManyRequests", retry_after=1, count=1)
    started = time.monotonic()
    arm.resources.resource_groups.create_or_update(name, {"location": "westus", "tags": {"after": "retry"}})
    assert time.monotonic() - started >= 1.0
    assert arm.resources.resource_groups.get(name).tags == {"after": "retry"}


def test_latency_is_added(arm, faults):
    name = _rg(arm)
    faults.add_fault(match="Microsoft.Resources/subscriptions/resourceGroups/read", kind="latency", latency_ms=400,
                     count=1)
    started = time.monotonic()
    arm.resources.resource_groups.get(name)
    assert time.monotonic() - started >= 0.4


def test_probability_zero_never_fires(arm, faults):
    name = _rg(arm)
    faults.add_fault(match="Microsoft.Resources/subscriptions/resourceGroups/read", status=500, probability=0.0)
    for _ in range(5):
        arm.resources.resource_groups.get(name)
    assert faults.ops("GET", "faults")["value"][0]["hits"] == 0


def test_failed_lro_surfaces_code_and_leaves_group(arm, faults):
    name = _rg(arm)
    faults.add_fault(match="Microsoft.Resources/subscriptions/resourceGroups/delete", kind="lro_failure",
                     code="InjectedDeleteFailure", message="The delete failed on purpose.", count=1)
    with pytest.raises(HttpResponseError) as err:
        arm.resources.resource_groups.begin_delete(name).result()
    assert "InjectedDeleteFailure" in str(err.value)
    group = arm.resources.resource_groups.get(name)
    assert group.properties.provisioning_state == "Succeeded"
    arm.resources.resource_groups.begin_delete(name).result()


def test_bad_rules_are_refused_with_the_field_named(faults):
    with pytest.raises(RuntimeError, match="'match'"):
        faults.ops("POST", "faults", {"status": 500})
    with pytest.raises(RuntimeError, match="'probability'"):
        faults.ops("POST", "faults", {"match": "*", "probability": 2})
    with pytest.raises(RuntimeError, match="'kind'"):
        faults.ops("POST", "faults", {"match": "*", "kind": "meteor"})
