"""Validation rules whose exact Azure error codes could not be confirmed from public sources.

The rules themselves are Azure's; the codes here are the emulator's best reading, so these tests
are not marked ``azure`` (they pin the emulator's behaviour, not real Azure's wording).
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulator.services.network.builders import ssh_rule


@pytest.mark.parametrize("prefix", ["10.0.300.0/24", "banana", "10.0.0.0"])
def test_malformed_subnet_prefix(arm, net, group, prefix):
    net.vnet()
    with pytest.raises(HttpResponseError) as err:
        arm.network.subnets.begin_create_or_update(group, "vnet", "other", {"properties": {"addressPrefix": prefix}})
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidAddressPrefixFormat")
    assert f"Address prefix {prefix} of resource " in err.value.error.message


def test_subnet_without_prefix_is_invalid(arm, net, group):
    net.vnet()
    with pytest.raises(HttpResponseError) as err:
        arm.network.subnets.begin_create_or_update(group, "vnet", "empty", {"properties": {}})
    assert (err.value.status_code, err.value.error.code) == (400, "NetcfgInvalidSubnet")
    assert err.value.error.message == "Subnet 'empty' is not valid in virtual network 'vnet'."


@pytest.mark.parametrize(("override", "code"), [
    ({"protocol": "Telnet"}, "SecurityRuleInvalidProtocol"),
    ({"access": "Maybe"}, "SecurityRuleInvalidAccess"),
    ({"direction": "Sideways"}, "SecurityRuleInvalidDirection"),
    ({"sourceAddressPrefix": "10.0.0.0/99"}, "SecurityRuleInvalidAddressPrefix"),
    ({"sourcePortRange": None}, "SecurityRuleParameterIsNullOrEmpty"),
    ({"destinationAddressPrefix": None}, "SecurityRuleParameterIsNullOrEmpty"),
])
def test_rule_field_validation(arm, net, group, override, code):
    net.nsg()
    rule = ssh_rule(**override)
    rule["properties"] = {k: v for k, v in rule["properties"].items() if v is not None}
    with pytest.raises(HttpResponseError) as err:
        arm.network.security_rules.begin_create_or_update(group, "nsg", "bad", rule)
    assert (err.value.status_code, err.value.error.code) == (400, code)
    assert list(arm.network.security_rules.list(group, "nsg")) == []


def test_static_private_address(arm, net, group):
    net.vnet()
    made = net.nic("static", privateIPAllocationMethod="Static", privateIPAddress="10.0.0.50")
    assert made.ip_configurations[0].private_ip_address == "10.0.0.50"
    assert made.ip_configurations[0].private_ip_allocation_method == "Static"
    assert net.nic("dynamic").ip_configurations[0].private_ip_address == "10.0.0.4"
    for address, code in (("10.0.0.50", "PrivateIPAddressInUse"), ("10.0.1.9", "PrivateIPAddressNotInSubnet"),
                          ("10.0.0.2", "PrivateIPAddressInReservedRange"),
                          ("10.0.0.255", "PrivateIPAddressInReservedRange")):
        with pytest.raises(HttpResponseError) as err:
            net.nic("other", privateIPAllocationMethod="Static", privateIPAddress=address)
        assert (err.value.status_code, err.value.error.code) == (400, code)
        assert address in err.value.error.message


def test_nic_needs_an_ip_configuration(arm, group, location):
    with pytest.raises(HttpResponseError) as err:
        arm.network.network_interfaces.begin_create_or_update(group, "nic", {"location": location, "properties": {}})
    assert (err.value.status_code, err.value.error.code) == (400, "NetworkInterfaceMustHaveAtLeastOneIpConfiguration")


def test_nic_ip_configuration_needs_a_subnet(arm, group, location):
    body = {"location": location, "properties": {"ipConfigurations": [{"name": "c", "properties": {}}]}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.network_interfaces.begin_create_or_update(group, "nic", body)
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidRequestFormat")
    assert err.value.error.details[0].code == "MissingJsonReferenceId"


def test_public_ip_sku_and_timeout(arm, group, location):
    body = {"location": location, "sku": {"name": "Premium"}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.public_ip_addresses.begin_create_or_update(group, "pip", body)
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidParameter")
    body = {"location": location, "properties": {"idleTimeoutInMinutes": 31}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.public_ip_addresses.begin_create_or_update(group, "pip", body)
    assert err.value.error.code == "PublicIPIdleTimeoutIsOutOfRange"
