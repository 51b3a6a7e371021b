"""Public IP addresses through the real azure-mgmt-network SDK: SKUs, loopback addresses, in-use rules."""

from __future__ import annotations

import ipaddress

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


@pytest.fixture
def pool(local_azure) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(local_azure.address_pool)


def test_create_get_list_update_delete(arm, net, group, location, pool):
    pips = arm.network.public_ip_addresses
    created = net.pip()
    assert created.provisioning_state == "Succeeded" and created.resource_guid and created.etag
    assert (created.sku.name, created.sku.tier) == ("Standard", "Regional")
    assert created.public_ip_allocation_method == "Static"
    assert created.public_ip_address_version == "IPv4" and created.idle_timeout_in_minutes == 4
    address = ipaddress.ip_address(created.ip_address)
    assert address in pool and created.ip_address.split(".")[-1] not in ("0", "255")
    assert created.id in [p.id for p in pips.list(group)]
    assert created.id in [p.id for p in pips.list_all()]

    again = pips.begin_create_or_update(group, "pip", {"location": location, "sku": {"name": "Standard"},
                                                       "tags": {"k": "v"}}).result()
    assert again.ip_address == created.ip_address, "an update keeps the address"
    assert again.tags == {"k": "v"}
    assert pips.update_tags(group, "pip", {"tags": {"k": "w"}}).tags == {"k": "w"}

    pips.begin_delete(group, "pip").result()
    with pytest.raises(ResourceNotFoundError):
        pips.get(group, "pip")


def test_addresses_are_unique(net, pool):
    addresses = [net.pip(f"pip{i}").ip_address for i in range(6)]
    assert len(set(addresses)) == 6
    assert all(ipaddress.ip_address(a) in pool for a in addresses)


def test_released_address_is_not_handed_out_at_once(arm, net, group):
    first = net.pip("one").ip_address
    arm.network.public_ip_addresses.begin_delete(group, "one").result()
    second = net.pip("two").ip_address
    assert second != first


def test_dns_label_and_basic_dynamic(arm, net, group, location, pool):
    labelled = net.pip("lbl", dnsSettings={"domainNameLabel": "factory-build"})
    assert labelled.dns_settings.fqdn == f"factory-build.{location}.cloudapp.azure.com"
    dynamic = net.pip("dyn", sku="Basic", publicIPAllocationMethod="Dynamic")
    assert dynamic.sku.name == "Basic" and dynamic.public_ip_allocation_method == "Dynamic"
    assert dynamic.ip_address is None, "a Dynamic address exists only while attached to a running VM"
    basic_static = net.pip("bst", sku="Basic", publicIPAllocationMethod="Static")
    assert ipaddress.ip_address(basic_static.ip_address) in pool


@pytest.mark.azure
def test_standard_sku_must_be_static(arm, group, location):
    body = {"location": location, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Dynamic"}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.public_ip_addresses.begin_create_or_update(group, "dyn", body)
    assert err.value.status_code == 400
    assert err.value.error.code == "StandardSkuPublicIPAddressesMustBeStatic"
    assert "must have AllocationMethod set to Static." in err.value.error.message


@pytest.mark.azure
def test_attached_public_ip_cannot_be_deleted(arm, net, group):
    net.vnet()
    pip = net.pip()
    nic = net.nic(pip_id=pip.id)
    config = nic.ip_configurations[0].id
    assert arm.network.public_ip_addresses.get(group, "pip").ip_configuration.id == config
    with pytest.raises(HttpResponseError) as err:
        arm.network.public_ip_addresses.begin_delete(group, "pip")
    assert err.value.status_code == 400
    assert err.value.error.code == "PublicIPAddressCannotBeDeleted"
    assert err.value.error.message.startswith(
        f"Public IP address {pip.id} can not be deleted since it is still allocated to resource {config}.")
    # detach (NIC update without the public IP), then the delete works
    net.nic()
    assert arm.network.public_ip_addresses.get(group, "pip").ip_configuration is None
    arm.network.public_ip_addresses.begin_delete(group, "pip").result()


@pytest.mark.azure
@pytest.mark.parametrize("name", ["-pip", "pip.", "p p", "y" * 81])
def test_invalid_names(arm, group, location, name):
    with pytest.raises(HttpResponseError) as err:
        arm.network.public_ip_addresses.begin_create_or_update(group, name, {"location": location})
    assert err.value.error.code == "InvalidResourceName"


@pytest.mark.azure
def test_missing_group(arm, location):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.network.public_ip_addresses.begin_create_or_update("no-such-group-y", "pip", {"location": location})
    assert err.value.error.code == "ResourceGroupNotFound"
