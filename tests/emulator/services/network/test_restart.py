"""Network state survives an emulator restart: resources, back-references and the address pool.

Runs a local Azure of its own (not the session one) so restarting it disturbs no other test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulator.services.network.builders import Net
from tests.localazure import LocalAzure

pytestmark = pytest.mark.slow
CONN_ID = "network_restart"


@pytest.fixture
def restartable(tmp_path: Path, local_azure: LocalAzure, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAzure, Any]]:
    """A second local Azure and the factory's hook pointed at it. (``local_azure`` skips this on real Azure.)"""
    from image_factory.hooks.arm import AzureResourceManagerHook

    emu = LocalAzure(tmp_path / "restartable").start()
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emu.connection_uri_env())
        yield emu, AzureResourceManagerHook(CONN_ID)
    finally:
        emu.stop()


def test_state_survives_restart(restartable: tuple[LocalAzure, Any]) -> None:
    emu, arm = restartable
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    net = Net(arm, "rg", "westeurope")
    vnet = net.vnet()
    pip = net.pip()
    nsg = net.nsg()
    nic = net.nic(pip_id=pip.id, nsg_id=nsg.id)

    emu.restart()

    network = arm.network
    assert network.virtual_networks.get("rg", "vnet").resource_guid == vnet.resource_guid
    assert [s.name for s in network.subnets.list("rg", "vnet")] == ["default"]
    assert network.public_ip_addresses.get("rg", "pip").ip_address == pip.ip_address
    again = network.network_interfaces.get("rg", "nic")
    assert again.ip_configurations[0].private_ip_address == "10.0.0.4"
    assert again.etag == nic.etag
    # back-references came back too: the public IP and the subnet are still protected
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_delete("rg", "pip")
    assert err.value.error.code == "PublicIPAddressCannotBeDeleted"
    with pytest.raises(HttpResponseError) as err:
        network.subnets.begin_delete("rg", "vnet", "default")
    assert err.value.error.code == "InUseSubnetCannotBeDeleted"
    # and the allocations: no address or private IP is handed out twice
    assert net.pip("pip2").ip_address != pip.ip_address
    assert net.nic("nic2").ip_configurations[0].private_ip_address == "10.0.0.5"
