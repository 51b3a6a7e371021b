"""Network interfaces through the real azure-mgmt-network SDK: private IPs, references, back-references."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.azure


def test_create_get_list_update_delete(arm, net, group, location):
    net.vnet()
    pip = net.pip()
    nsg = net.nsg()
    nics = arm.network.network_interfaces
    created = net.nic(pip_id=pip.id, nsg_id=nsg.id)
    assert created.provisioning_state == "Succeeded" and created.resource_guid and created.etag
    config = created.ip_configurations[0]
    assert config.id == f"{created.id}/ipConfigurations/ipconfig1"
    assert (config.private_ip_address, config.private_ip_allocation_method, config.primary) == ("10.0.0.4", "Dynamic", True)
    assert config.subnet.id == net.subnet_id() and config.public_ip_address.id == pip.id
    assert config.provisioning_state == "Succeeded"
    assert created.network_security_group.id == nsg.id
    assert created.virtual_machine is None
    assert created.id in [n.id for n in nics.list(group)] and created.id in [n.id for n in nics.list_all()]
    assert nics.get(group, "nic").ip_configurations[0].private_ip_address == "10.0.0.4"
    assert arm.network.network_interface_ip_configurations.get(group, "nic", "ipconfig1").private_ip_address == "10.0.0.4"

    # an update keeps the private address; dropping the public IP and NSG clears their back-references
    updated = net.nic()
    assert updated.ip_configurations[0].private_ip_address == "10.0.0.4"
    assert updated.ip_configurations[0].public_ip_address is None and updated.network_security_group is None
    assert arm.network.public_ip_addresses.get(group, "pip").ip_configuration is None
    assert not arm.network.network_security_groups.get(group, "nsg").network_interfaces
    assert nics.update_tags(group, "nic", {"tags": {"t": "1"}}).tags == {"t": "1"}

    nics.begin_delete(group, "nic").result()
    with pytest.raises(ResourceNotFoundError):
        nics.get(group, "nic")
    assert not arm.network.subnets.get(group, "vnet", "default").ip_configurations


def test_private_addresses_allocate_from_four_and_are_reused_after_delete(arm, net, group):
    net.vnet()
    addresses = [net.nic(f"nic{i}").ip_configurations[0].private_ip_address for i in range(3)]
    assert addresses == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    arm.network.network_interfaces.begin_delete(group, "nic1").result()
    assert net.nic("nic3").ip_configurations[0].private_ip_address == "10.0.0.5"


def test_full_subnet(arm, net, group):
    net.vnet(subnets={"tiny": "10.0.0.0/29"})  # .4, .5, .6 usable
    subnet = net.subnet_id(subnet="tiny")
    for i in range(3):
        net.nic(f"n{i}", subnet_id=subnet)
    with pytest.raises(HttpResponseError) as err:
        net.nic("n3", subnet_id=subnet)
    assert err.value.error.code == "SubnetIsFull"


@pytest.mark.parametrize("what", ["subnet", "pip", "nsg"])
def test_missing_references(arm, net, group, what):
    net.vnet()
    nic_id_tail = "/providers/Microsoft.Network/networkInterfaces/nic"
    missing = {
        "subnet": f"{net.subnet_id()}-gone",
        "pip": net.subnet_id().split("/providers/")[0] + "/providers/Microsoft.Network/publicIPAddresses/gone",
        "nsg": net.subnet_id().split("/providers/")[0] + "/providers/Microsoft.Network/networkSecurityGroups/gone",
    }[what]
    kwargs = {"subnet_id": missing} if what == "subnet" else {f"{what}_id": missing}
    with pytest.raises(HttpResponseError) as err:
        net.nic(**kwargs)
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidResourceReference"
    assert err.value.error.message.startswith(f"Resource {missing} referenced by resource ")
    assert nic_id_tail in err.value.error.message
    with pytest.raises(ResourceNotFoundError):
        arm.network.network_interfaces.get(group, "nic")


def test_reference_in_other_region_is_invalid(arm, net, group):
    net.vnet()
    body = {"location": "eastus", "properties": {"ipConfigurations": [
        {"name": "c", "properties": {"subnet": {"id": net.subnet_id()}}}]}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.network_interfaces.begin_create_or_update(group, "far", body)
    assert err.value.error.code == "InvalidResourceReference"


def test_public_ip_used_by_two_nics(arm, net, group):
    net.vnet()
    pip = net.pip()
    first = net.nic("first", pip_id=pip.id)
    with pytest.raises(HttpResponseError) as err:
        net.nic("second", pip_id=pip.id)
    assert err.value.error.code == "PublicIPAddressInUse"
    assert first.ip_configurations[0].id in err.value.error.message


def test_malformed_reference(arm, net, group):
    with pytest.raises(HttpResponseError) as err:
        net.nic(subnet_id="not-an-id")
    assert err.value.error.code == "LinkedInvalidPropertyId"


def test_dns_settings_and_defaults(arm, net, group):
    net.vnet()
    nic = net.nic()
    assert nic.dns_settings.internal_domain_name_suffix.endswith(".internal.cloudapp.net")
    assert nic.enable_accelerated_networking is False and nic.enable_ip_forwarding is False
