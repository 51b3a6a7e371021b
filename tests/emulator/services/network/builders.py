"""Builders for network tests: each creates a resource through the real SDK and waits for its LRO."""

from __future__ import annotations

from typing import Any


class Net:
    """Small helpers over ``arm.network`` for one resource group."""

    def __init__(self, arm: Any, group: str, location: str) -> None:
        self.client = arm.network
        self.group = group
        self.location = location

    def vnet(self, name: str = "vnet", space: str = "10.0.0.0/16", subnets: dict[str, str] | None = None) -> Any:
        subnets = {"default": "10.0.0.0/24"} if subnets is None else subnets
        body = {
            "location": self.location,
            "properties": {
                "addressSpace": {"addressPrefixes": [space]},
                "subnets": [{"name": n, "properties": {"addressPrefix": p}} for n, p in subnets.items()],
            },
        }
        return self.client.virtual_networks.begin_create_or_update(self.group, name, body).result()

    def subnet_id(self, vnet: str = "vnet", subnet: str = "default") -> str:
        return self.client.subnets.get(self.group, vnet, subnet).id

    def pip(self, name: str = "pip", **props: Any) -> Any:
        body: dict[str, Any] = {"location": self.location, "sku": {"name": props.pop("sku", "Standard")}}
        if props:
            body["properties"] = props
        return self.client.public_ip_addresses.begin_create_or_update(self.group, name, body).result()

    def nsg(self, name: str = "nsg", rules: list[dict[str, Any]] | None = None) -> Any:
        body = {"location": self.location, "properties": {"securityRules": rules or []}}
        return self.client.network_security_groups.begin_create_or_update(self.group, name, body).result()

    def nic(self, name: str = "nic", subnet_id: str | None = None, pip_id: str | None = None,
            nsg_id: str | None = None, **config: Any) -> Any:
        cfg: dict[str, Any] = {"subnet": {"id": subnet_id or self.subnet_id()}, **config}
        if pip_id:
            cfg["publicIPAddress"] = {"id": pip_id}
        props: dict[str, Any] = {"ipConfigurations": [{"name": "ipconfig1", "properties": cfg}]}
        if nsg_id:
            props["networkSecurityGroup"] = {"id": nsg_id}
        body = {"location": self.location, "properties": props}
        return self.client.network_interfaces.begin_create_or_update(self.group, name, body).result()


def ssh_rule(name: str = "allow-ssh", priority: int = 100, direction: str = "Inbound", **over: Any) -> dict[str, Any]:
    props = {
        "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "22",
        "sourceAddressPrefix": "203.0.113.7/32", "destinationAddressPrefix": "*",
        "access": "Allow", "priority": priority, "direction": direction, **over,
    }
    return {"name": name, "properties": props}

