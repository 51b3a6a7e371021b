"""The build network: a VNet whose NSG lets only the worker reach the build VM's management ports."""

from __future__ import annotations

import ipaddress
from typing import Any

from image_factory.hooks.arm import AzureResourceManagerHook
from image_factory.hooks.lookup import get_or_none

LOCAL_SOURCE = "127.0.0.0/8"  # local Azure: guests listen on loopback addresses
EGRESS_ECHO = "https://api.ipify.org"
VNET_PREFIX, SUBNET_PREFIX = "10.40.0.0/16", "10.40.1.0/24"
RULE_NAME, RULE_PRIORITY = "allow-factory-worker", 100


class NetworkHook(AzureResourceManagerHook):
    """Everything a build VM needs on the network, created once per run whatever the retries."""

    def ensure_build_network(
        self,
        resource_group: str,
        location: str,
        *,
        vnet: str,
        subnet: str,
        nsg: str,
        public_ip: str,
        nic: str,
        allow_from: str,
        ports: list[int],
        tags: dict[str, str],
    ) -> dict[str, str]:
        """VNet + subnet behind the NSG, a static public IP and the NIC using both: ``nic_id``, ``public_ip_id``."""
        nsg_id = self._ensure_nsg(resource_group, location, nsg, allow_from, ports, tags)
        subnet_id = self._ensure_vnet(resource_group, location, vnet, subnet, nsg_id, tags)
        pip_id = self._ensure_public_ip(resource_group, location, public_ip, tags)
        nic_id = self._ensure_nic(resource_group, location, nic, subnet_id, pip_id, tags)
        return {"nic_id": nic_id, "public_ip_id": pip_id}

    def public_ip_address(self, resource_group: str, public_ip: str) -> str | None:
        """The address (None until allocated, or when the IP does not exist)."""
        found = get_or_none(self.network.public_ip_addresses.get, resource_group, public_ip)
        return str(found.ip_address) if found is not None and found.ip_address else None

    def allowed_source(self) -> str:
        """The CIDR the NSG admits: the worker's own egress address, so nobody else reaches the build VM."""
        if self.is_local:
            return LOCAL_SOURCE
        configured = self._extras.get("allowed_source_address")
        if configured:
            return _as_cidr(str(configured), origin="connection extra 'allowed_source_address'")
        return _as_cidr(_discover_egress_address(), origin=EGRESS_ECHO)

    def security_rules(self, resource_group: str, nsg: str) -> list[dict[str, Any]]:
        """The NSG's own rules as plain data: what a check (or a human) reads back."""
        return [
            {
                "name": r.name,
                "source": r.source_address_prefix,
                "access": r.access,
                "direction": r.direction,
                "protocol": r.protocol,
                "priority": r.priority,
                "ports": sorted(r.destination_port_ranges or [r.destination_port_range], key=str),
            }
            for r in self.network.security_rules.list(resource_group, nsg)
        ]

    # steps ----------------------------------------------------------------------------------------
    def _ensure_nsg(
        self, resource_group: str, location: str, name: str, allow_from: str, ports: list[int], tags: dict[str, str]
    ) -> str:
        """PUT every time: NSG rules are declarative, so a retry with another worker address converges."""
        from azure.mgmt.network import models as nm

        rule = nm.SecurityRule(
            name=RULE_NAME,
            properties=nm.SecurityRulePropertiesFormat(
                priority=RULE_PRIORITY,
                direction="Inbound",
                access="Allow",
                protocol="Tcp",
                source_address_prefix=allow_from,
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_ranges=[str(p) for p in sorted(set(ports))],
                description="Only the image factory's worker may reach the build VM's management ports.",
            ),
        )
        body = nm.NetworkSecurityGroup(
            location=location, tags=tags, properties=nm.NetworkSecurityGroupPropertiesFormat(security_rules=[rule])
        )
        poller = self.network.network_security_groups.begin_create_or_update(
            resource_group, name, body, polling=self.lro()
        )
        return str(poller.result().id)

    def _ensure_vnet(
        self, resource_group: str, location: str, name: str, subnet: str, nsg_id: str, tags: dict[str, str]
    ) -> str:
        from azure.mgmt.network import models as nm

        existing = get_or_none(self.network.subnets.get, resource_group, name, subnet)
        if existing is not None:
            return str(existing.id)
        sub = nm.Subnet(
            name=subnet,
            properties=nm.SubnetPropertiesFormat(
                address_prefix=SUBNET_PREFIX, network_security_group=nm.NetworkSecurityGroup(id=nsg_id)
            ),
        )
        body = nm.VirtualNetwork(
            location=location,
            tags=tags,
            properties=nm.VirtualNetworkPropertiesFormat(
                address_space=nm.AddressSpace(address_prefixes=[VNET_PREFIX]), subnets=[sub]
            ),
        )
        created = self.network.virtual_networks.begin_create_or_update(
            resource_group, name, body, polling=self.lro()
        ).result()
        return str(next(s.id for s in created.subnets or [] if s.name == subnet))

    def _ensure_public_ip(self, resource_group: str, location: str, name: str, tags: dict[str, str]) -> str:
        from azure.mgmt.network import models as nm

        existing = get_or_none(self.network.public_ip_addresses.get, resource_group, name)
        if existing is not None:
            return str(existing.id)
        body = nm.PublicIPAddress(
            location=location,
            tags=tags,
            sku=nm.PublicIPAddressSku(name="Standard"),
            properties=nm.PublicIPAddressPropertiesFormat(public_ip_allocation_method="Static"),
        )
        return str(
            self.network.public_ip_addresses.begin_create_or_update(resource_group, name, body, polling=self.lro())
            .result()
            .id
        )

    def _ensure_nic(
        self, resource_group: str, location: str, name: str, subnet_id: str, pip_id: str, tags: dict[str, str]
    ) -> str:
        from azure.mgmt.network import models as nm

        existing = get_or_none(self.network.network_interfaces.get, resource_group, name)
        if existing is not None:
            return str(existing.id)
        ip_config = nm.NetworkInterfaceIPConfiguration(
            name="ipconfig1",
            properties=nm.NetworkInterfaceIPConfigurationPropertiesFormat(
                subnet=nm.Subnet(id=subnet_id), public_ip_address=nm.PublicIPAddress(id=pip_id)
            ),
        )
        body = nm.NetworkInterface(
            location=location,
            tags=tags,
            properties=nm.NetworkInterfacePropertiesFormat(ip_configurations=[ip_config]),
        )
        return str(
            self.network.network_interfaces.begin_create_or_update(resource_group, name, body, polling=self.lro())
            .result()
            .id
        )


def _as_cidr(value: str, *, origin: str) -> str:
    """An address or network as CIDR (a bare address becomes a /32 or /128)."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{origin}: {value.strip()!r} is not an IP address or CIDR network") from None


def _discover_egress_address() -> str:
    """The worker's public address as an echo service sees it."""
    import requests

    try:
        resp = requests.get(EGRESS_ECHO, timeout=10)
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise RuntimeError(
            f"Could not discover this worker's public IP address from {EGRESS_ECHO} ({exc}); set the Azure "
            "connection's extra 'allowed_source_address' to the address (or CIDR) the build VM should admit."
        ) from exc
    return str(resp.text)
