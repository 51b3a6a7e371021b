"""NetworkHook against the local Azure: one build network per run, reachable only from the worker."""

from __future__ import annotations

import json
import uuid

import pytest

from image_factory.hooks.network import NetworkHook
from tests.localazure import LocalAzure
from tests.plugins.image_factory.hooks.conftest import inventory

PORTS = [22, 5986]


@pytest.fixture
def hook(azure_conn: str) -> NetworkHook:
    return NetworkHook(azure_conn)


def _build(hook: NetworkHook, group: str, location: str, run: str, allow_from: str) -> dict[str, str]:
    return hook.ensure_build_network(
        group,
        location,
        vnet=f"vnet-{run}",
        subnet="build",
        nsg=f"nsg-{run}",
        public_ip=f"pip-{run}",
        nic=f"nic-{run}",
        allow_from=allow_from,
        ports=PORTS,
        tags={"run": run},
    )


def test_ensure_build_network_twice_creates_one_of_each(
    hook: NetworkHook, local_azure: LocalAzure, group: str, location: str
) -> None:
    run = uuid.uuid4().hex[:8]
    first = _build(hook, group, location, run, hook.allowed_source())
    second = _build(hook, group, location, run, hook.allowed_source())
    assert first == second
    assert first["nic_id"].endswith(f"/networkInterfaces/nic-{run}")
    assert first["public_ip_id"].endswith(f"/publicIPAddresses/pip-{run}")
    for rtype in (
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Network/networkInterfaces",
    ):
        assert len(inventory(local_azure, rtype, run=run)) == 1, rtype
    nic = hook.network.network_interfaces.get(group, f"nic-{run}")
    config = nic.ip_configurations[0]
    assert str(config.public_ip_address.id).lower() == first["public_ip_id"].lower()
    subnet = hook.network.subnets.get(group, f"vnet-{run}", "build")
    assert str(config.subnet.id).lower() == str(subnet.id).lower()
    assert str(subnet.network_security_group.id).lower().endswith(f"/networksecuritygroups/nsg-{run}")


def test_nsg_admits_only_the_given_source_on_the_given_ports(hook: NetworkHook, group: str, location: str) -> None:
    run = uuid.uuid4().hex[:8]
    _build(hook, group, location, run, "203.0.113.7/32")
    rules = hook.security_rules(group, f"nsg-{run}")
    assert rules == [
        {
            "name": "allow-factory-worker",
            "source": "203.0.113.7/32",
            "access": "Allow",
            "direction": "Inbound",
            "protocol": "Tcp",
            "priority": 100,
            "ports": ["22", "5986"],
        }
    ]
    # a retry from a worker with another address converges on it: still one rule
    _build(hook, group, location, run, "198.51.100.0/24")
    rules = hook.security_rules(group, f"nsg-{run}")
    assert [(r["source"], r["ports"]) for r in rules] == [("198.51.100.0/24", ["22", "5986"])]


def test_public_ip_address(hook: NetworkHook, group: str, location: str) -> None:
    run = uuid.uuid4().hex[:8]
    _build(hook, group, location, run, "127.0.0.0/8")
    address = hook.public_ip_address(group, f"pip-{run}")
    assert address is not None and address.count(".") == 3
    assert hook.public_ip_address(group, "pip-does-not-exist") is None


def test_allowed_source_local_is_loopback(hook: NetworkHook) -> None:
    assert hook.is_local
    assert hook.allowed_source() == "127.0.0.0/8"


def _real_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **extra: str) -> NetworkHook:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "azure",
                "login": "app",
                "password": "secret",
                "extra": {"tenantId": "t", "subscriptionId": "s", **extra},
            }
        ),
    )
    return NetworkHook(conn_id)


def test_allowed_source_from_connection_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _real_conn(monkeypatch, "net_ip", allowed_source_address="203.0.113.9").allowed_source() == "203.0.113.9/32"
    assert (
        _real_conn(monkeypatch, "net_cidr", allowed_source_address="198.51.100.0/24").allowed_source()
        == "198.51.100.0/24"
    )
    with pytest.raises(ValueError, match="allowed_source_address"):
        _real_conn(monkeypatch, "net_bad", allowed_source_address="not-an-ip").allowed_source()


def test_allowed_source_discovery_failure_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from image_factory.hooks import network

    monkeypatch.setattr(network, "EGRESS_ECHO", "https://127.0.0.1:9/")  # nothing listens on the discard port
    with pytest.raises(RuntimeError, match="allowed_source_address"):
        _real_conn(monkeypatch, "net_discover").allowed_source()
