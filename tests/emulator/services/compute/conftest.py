"""Fixtures of the compute tests: a network to attach VMs to, VM bodies, and small state helpers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

DEBIAN = {"publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"}
DEBIAN_GEN2 = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"}
WINDOWS = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-azure-edition",
           "version": "latest"}
WINDOWS_PASSWORD = "Local-Azure-Pa55!"


@pytest.fixture(scope="session")
def ssh_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


class Kit:
    """VMs and their network in one resource group, through the real SDK clients."""

    def __init__(self, arm: Any, group: str, location: str, ssh_key: str) -> None:
        self.arm = arm
        self.compute = arm.compute
        self.group = group
        self.location = location
        self.ssh_key = ssh_key
        self._subnets: dict[str, str] = {}

    # network -------------------------------------------------------------------------------
    def subnet(self, location: str | None = None) -> str:
        loc = location or self.location
        if loc not in self._subnets:
            body = {"location": loc, "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
            self.arm.network.virtual_networks.begin_create_or_update(self.group, f"vnet-{loc}", body).result()
            self._subnets[loc] = self.arm.network.subnets.get(self.group, f"vnet-{loc}", "default").id
        return self._subnets[loc]

    def nic(self, name: str | None = None, *, public: bool = True, location: str | None = None) -> str:
        name = name or f"nic-{uuid.uuid4().hex[:6]}"
        loc = location or self.location
        config: dict[str, Any] = {"subnet": {"id": self.subnet(loc)}}
        if public:
            pip = self.arm.network.public_ip_addresses.begin_create_or_update(
                self.group, f"{name}-ip",
                {"location": loc, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
            ).result()
            config["publicIPAddress"] = {"id": pip.id}
        body = {"location": loc, "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": config}]}}
        return str(self.arm.network.network_interfaces.begin_create_or_update(self.group, name, body).result().id)

    # bodies --------------------------------------------------------------------------------
    def linux_body(self, nic_id: str, *, image: dict[str, Any] | None = None, computer_name: str = "buildvm",
                   os_profile: dict[str, Any] | bool | None = True, **props: Any) -> dict[str, Any]:
        profile: dict[str, Any] | None = None
        if os_profile is True:
            profile = {
                "computerName": computer_name,
                "adminUsername": "azureuser",
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": self.ssh_key}]},
                },
            }
        elif isinstance(os_profile, dict):
            profile = os_profile
        body: dict[str, Any] = {
            "location": props.pop("location", self.location),
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_B2s"},
                "storageProfile": {"imageReference": image or dict(DEBIAN),
                                   "osDisk": {"createOption": "FromImage", **props.pop("os_disk", {})}},
                "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
                **props,
            },
        }
        if profile is not None:
            body["properties"]["osProfile"] = profile
        return body

    def windows_body(self, nic_id: str, *, computer_name: str = "winbuild", password: str = WINDOWS_PASSWORD,
                     username: str = "factoryadmin", **props: Any) -> dict[str, Any]:
        body = self.linux_body(nic_id, image=dict(WINDOWS), os_profile={
            "computerName": computer_name, "adminUsername": username, "adminPassword": password,
        }, **props)
        body["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
        return body

    # VMs -------------------------------------------------------------------------------------
    def create(self, name: str, body: dict[str, Any]) -> Any:
        return self.compute.virtual_machines.begin_create_or_update(self.group, name, body).result()

    def linux_vm(self, name: str = "vm", **kw: Any) -> Any:
        return self.create(name, self.linux_body(self.nic(f"{name}-nic"), **kw))

    def windows_vm(self, name: str = "winvm", **kw: Any) -> Any:
        return self.create(name, self.windows_body(self.nic(f"{name}-nic"), **kw))

    def statuses(self, name: str) -> list[str]:
        view = self.compute.virtual_machines.instance_view(self.group, name)
        return [s.code for s in view.statuses]

    def power(self, name: str) -> str:
        return next(c for c in self.statuses(name) if c.startswith("PowerState/"))

    def wait_for(self, name: str, check: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        deadline = time.time() + timeout
        codes = self.statuses(name)
        while not check(codes) and time.time() < deadline:
            time.sleep(0.1)
            codes = self.statuses(name)
        return codes


@pytest.fixture
def kit(arm: Any, group: str, location: str, ssh_public_key: str) -> Kit:
    return Kit(arm, group, location, ssh_public_key)


def error_of(exc: Any) -> tuple[int, str, str, str | None]:
    """(status, code, message, target) of an SDK HttpResponseError."""
    err = exc.error
    return exc.status_code, err.code, err.message, getattr(err, "target", None)
