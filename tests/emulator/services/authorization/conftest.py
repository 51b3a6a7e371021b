"""Fixtures for Microsoft.Authorization tests: a resource to lock, and clean-up of what a test locked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def vnet(arm, group: str, location: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A virtual network in the test's group: the resource-level scope for locks and role assignments."""
    name = f"vnet-{uuid.uuid4().hex[:6]}"
    arm.network.virtual_networks.begin_create_or_update(
        group, name, {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.20.0.0/16"]}}}
    ).result()
    yield name


@pytest.fixture
def unlock(arm) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Lock ids a test created; removed afterwards even when the test fails, so nothing stays locked."""
    ids: list[str] = []
    yield ids
    for lock_id in ids:
        scope, _, name = lock_id.rpartition("/providers/Microsoft.Authorization/locks/")
        try:
            arm.locks.management_locks.delete_by_scope(scope, name)
        except Exception:  # already gone
            pass


@pytest.fixture
def vm(arm, group: str, location: str) -> str:  # type: ignore[no-untyped-def]
    """A running Debian VM (simulated guest) in the test's group; the network and compute SDKs take wire-shaped dicts."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    net = arm.network
    vnet = net.virtual_networks.begin_create_or_update(group, "vm-vnet", {
        "location": location,
        "properties": {"addressSpace": {"addressPrefixes": ["10.40.0.0/16"]},
                       "subnets": [{"name": "default", "properties": {"addressPrefix": "10.40.0.0/24"}}]},
    }).result()
    # a public IP gives the simulated guest its own loopback address to listen on
    pip = net.public_ip_addresses.begin_create_or_update(group, "vm-pip", {
        "location": location, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"},
    }).result()
    nic = net.network_interfaces.begin_create_or_update(group, "vm-nic", {
        "location": location,
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
            "subnet": {"id": vnet.subnets[0].id}, "publicIPAddress": {"id": pip.id}}}]},
    }).result()
    name = "locked-vm"
    arm.compute.virtual_machines.begin_create_or_update(group, name, {
        "location": location,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {
                "imageReference": {"publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"},
                "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Standard_LRS"}},
            },
            "osProfile": {"computerName": name, "adminUsername": "builder", "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {"publicKeys": [{"path": "/home/builder/.ssh/authorized_keys", "keyData": key}]}}},
            "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
        },
    }).result()
    return name
