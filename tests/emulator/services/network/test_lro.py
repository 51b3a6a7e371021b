"""Network operations take (scaled) time: Updating/Deleting are visible until the operation settles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.localazure import LocalAzure


@pytest.fixture
def slow_clock(local_azure: LocalAzure) -> Iterator[None]:
    """Vnet PUTs take ~1 s and deletes ~2.5 s (Azure's 4 s / 10 s at a quarter of real time)."""
    before = local_azure.settings()["time_factor"]
    local_azure.settings(time_factor=0.25)
    try:
        yield
    finally:
        local_azure.settings(time_factor=before)


def test_put_and_delete_take_time(arm: Any, group: str, location: str, slow_clock: None) -> None:
    vnets = arm.network.virtual_networks
    body = {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                                                 "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
    poller = vnets.begin_create_or_update(group, "timed", body)
    during = vnets.get(group, "timed")
    assert during.provisioning_state == "Updating"
    assert during.subnets[0].provisioning_state == "Updating"
    done = poller.result()
    assert done.provisioning_state == "Succeeded" and done.subnets[0].provisioning_state == "Succeeded"

    deleting = vnets.begin_delete(group, "timed")
    assert vnets.get(group, "timed").provisioning_state == "Deleting"
    deleting.result()
    with pytest.raises(ResourceNotFoundError):
        vnets.get(group, "timed")


def test_reference_to_resource_mid_update_is_refused(arm: Any, group: str, location: str, slow_clock: None) -> None:
    body = {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                                                 "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
    poller = arm.network.virtual_networks.begin_create_or_update(group, "busy", body)
    subnet_id = (f"/subscriptions/{arm.subscription_id}/resourceGroups/{group}/providers/Microsoft.Network/"
                 "virtualNetworks/busy/subnets/s")
    nic = {"location": location, "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": subnet_id}}}]}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.network_interfaces.begin_create_or_update(group, "early", nic)
    assert err.value.error.code == "ReferencedResourceNotProvisioned"
    poller.result()
    made = arm.network.network_interfaces.begin_create_or_update(group, "early", nic).result()
    assert made.ip_configurations[0].private_ip_address == "10.0.0.4"
