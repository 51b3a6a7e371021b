"""Virtual networks and subnets through the real azure-mgmt-network SDK."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.azure


def test_create_get_list_update_delete(arm, net, group, location):
    vnets = arm.network.virtual_networks
    created = net.vnet("vnet", subnets={"default": "10.0.0.0/24", "build": "10.0.1.0/24"})
    assert created.provisioning_state == "Succeeded"
    assert created.location == location and created.etag
    assert created.id.endswith(f"/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/vnet")
    assert created.resource_guid
    assert created.address_space.address_prefixes == ["10.0.0.0/16"]
    assert sorted((s.name, s.address_prefix) for s in created.subnets) == [("build", "10.0.1.0/24"),
                                                                             ("default", "10.0.0.0/24")]
    assert all(s.provisioning_state == "Succeeded" for s in created.subnets)

    got = vnets.get(group, "vnet")
    assert got.id == created.id and got.resource_guid == created.resource_guid
    assert "vnet" in [v.name for v in vnets.list(group)]
    assert created.id in [v.id for v in vnets.list_all()]

    # PUT again: 200, tags replaced, the subnet list is the new complete set
    body = {"location": location, "tags": {"run": "2"},
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                           "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
    updated = vnets.begin_create_or_update(group, "vnet", body).result()
    assert updated.tags == {"run": "2"} and updated.resource_guid == created.resource_guid
    assert updated.etag != created.etag
    assert [s.name for s in updated.subnets] == ["default"]
    with pytest.raises(ResourceNotFoundError):
        arm.network.subnets.get(group, "vnet", "build")

    tagged = vnets.update_tags(group, "vnet", {"tags": {"run": "3"}})
    assert tagged.tags == {"run": "3"} and vnets.get(group, "vnet").tags == {"run": "3"}

    vnets.begin_delete(group, "vnet").result()
    with pytest.raises(ResourceNotFoundError) as err:
        vnets.get(group, "vnet")
    assert err.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        arm.network.subnets.get(group, "vnet", "default")


def test_put_answers_updating_then_settles(arm, group, location):
    vnets = arm.network.virtual_networks
    body = {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}
    first = vnets.begin_create_or_update(group, "lro", body, polling=False).result()  # the PUT's own answer
    assert first.provisioning_state == "Updating"
    poller = vnets.begin_create_or_update(group, "lro", body)
    assert poller.result().provisioning_state == "Succeeded"
    assert vnets.get(group, "lro").provisioning_state == "Succeeded"


def test_missing_group_and_missing_vnet(arm, location):
    body = {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    with pytest.raises(ResourceNotFoundError) as err:
        arm.network.virtual_networks.begin_create_or_update("no-such-group-x", "vnet", body)
    assert err.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        list(arm.network.virtual_networks.list("no-such-group-x"))
    assert err.value.error.code == "ResourceGroupNotFound"


def test_missing_vnet_and_subnet_are_404(arm, net, group):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.network.virtual_networks.get(group, "nope")
    assert err.value.error.code == "ResourceNotFound"
    assert f"'Microsoft.Network/virtualNetworks/nope' under resource group '{group}'" in err.value.error.message
    net.vnet()
    with pytest.raises(ResourceNotFoundError) as err:
        arm.network.subnets.get(group, "vnet", "nope")
    assert err.value.error.code == "NotFound"


def test_delete_missing_answers_204(arm, net, group):
    statuses: list[int] = []
    hook = {"raw_response_hook": lambda response: statuses.append(response.http_response.status_code)}
    n = arm.network
    for poller in (n.virtual_networks.begin_delete(group, "never-was", **hook),
                   n.subnets.begin_delete(group, "never-was", "s", **hook),
                   n.network_security_groups.begin_delete(group, "never-was", **hook),
                   n.security_rules.begin_delete(group, "never-was", "r", **hook),
                   n.public_ip_addresses.begin_delete(group, "never-was", **hook),
                   n.network_interfaces.begin_delete(group, "never-was", **hook)):
        poller.result()
        assert poller.status() == "Succeeded"
    assert statuses == [204] * 6
    net.vnet()
    arm.network.subnets.begin_delete(group, "vnet", "never-was").result()
    assert [s.name for s in arm.network.subnets.list(group, "vnet")] == ["default"]


@pytest.mark.parametrize("name", ["a", "-vnet", "vnet-", "vnet.", "bad name", "x" * 65])
def test_invalid_vnet_names(arm, group, location, name):
    body = {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.virtual_networks.begin_create_or_update(group, name, body)
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidResourceName"
    assert "must begin with a word character" in err.value.error.message


def test_valid_unusual_names(arm, net, group):
    net.vnet("v_", subnets={"s.1-x_": "10.0.0.0/24"})
    assert arm.network.subnets.get(group, "v_", "s.1-x_").address_prefix == "10.0.0.0/24"


def test_subnet_child_crud_keeps_vnet_inline_list(arm, net, group):
    net.vnet(subnets={})
    subnets = arm.network.subnets
    made = subnets.begin_create_or_update(group, "vnet", "app", {"properties": {"addressPrefix": "10.0.2.0/24"}}).result()
    assert made.provisioning_state == "Succeeded"
    assert made.id.endswith("/virtualNetworks/vnet/subnets/app")
    assert made.private_endpoint_network_policies == "Disabled"
    inline = arm.network.virtual_networks.get(group, "vnet").subnets
    assert [(s.name, s.address_prefix, s.provisioning_state) for s in inline] == [("app", "10.0.2.0/24", "Succeeded")]
    assert [s.name for s in subnets.list(group, "vnet")] == ["app"]

    subnets.begin_create_or_update(group, "vnet", "app", {"properties": {"addressPrefix": "10.0.3.0/24"}}).result()
    assert arm.network.virtual_networks.get(group, "vnet").subnets[0].address_prefix == "10.0.3.0/24"

    subnets.begin_delete(group, "vnet", "app").result()
    assert arm.network.virtual_networks.get(group, "vnet").subnets == []
    assert list(subnets.list(group, "vnet")) == []


def test_subnet_of_missing_vnet(arm, group):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.network.subnets.begin_create_or_update(group, "ghost", "s", {"properties": {"addressPrefix": "10.0.0.0/24"}})
    assert err.value.error.code == "ResourceNotFound"


@pytest.mark.parametrize(("prefix", "code"), [
    ("10.1.0.0/24", "NetcfgSubnetRangeOutsideVnet"),
    ("10.0.0.128/25", "NetcfgSubnetRangesOverlap"),
    ("10.0.5.1/24", "InvalidCIDRNotation"),
])
def test_subnet_layout_rules(arm, net, group, prefix, code):
    net.vnet()  # 10.0.0.0/16 with default 10.0.0.0/24
    with pytest.raises(HttpResponseError) as err:
        arm.network.subnets.begin_create_or_update(group, "vnet", "other", {"properties": {"addressPrefix": prefix}})
    assert err.value.status_code == 400
    assert err.value.error.code == code
    assert [s.name for s in arm.network.subnets.list(group, "vnet")] == ["default"]


def test_layout_messages(arm, net, group, location):
    with pytest.raises(HttpResponseError) as err:
        net.vnet("vn", subnets={"a": "10.0.0.0/24", "b": "10.0.0.0/23"})
    assert err.value.error.code == "NetcfgSubnetRangesOverlap"
    assert err.value.error.message == ("Subnet 'b' is not valid because its IP address range overlaps with that of an "
                                       "existing subnet in virtual network 'vn'.")
    with pytest.raises(HttpResponseError) as err:
        net.vnet("vn", subnets={"a": "192.168.0.0/24"})
    assert err.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    assert err.value.error.message == ("Subnet 'a' is not valid because its IP address range is outside the IP "
                                       "address range of virtual network 'vn'.")
    with pytest.raises(HttpResponseError) as err:
        net.vnet("vn", space="10.0.0.1/16", subnets={})
    assert err.value.error.code == "InvalidCIDRNotation"
    assert "the address prefix should be 10.0.0.0/16" in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        arm.network.subnets.begin_create_or_update(group, "missing", "s", {"properties": {}})
    assert err.value.status_code == 404


def test_in_use_subnet_cannot_be_deleted(arm, net, group):
    net.vnet()
    nic = net.nic()
    config = nic.ip_configurations[0].id
    with pytest.raises(HttpResponseError) as err:
        arm.network.subnets.begin_delete(group, "vnet", "default")
    assert err.value.status_code == 400
    assert err.value.error.code == "InUseSubnetCannotBeDeleted"
    assert err.value.error.message.startswith(f"Subnet default is in use by {config} and cannot be deleted.")
    with pytest.raises(HttpResponseError) as err:
        arm.network.virtual_networks.begin_delete(group, "vnet")
    assert err.value.error.code == "InUseSubnetCannotBeDeleted"
    # a vnet PUT leaving the subnet out would delete it: refused too
    with pytest.raises(HttpResponseError) as err:
        net.vnet(subnets={"other": "10.0.9.0/24"})
    assert err.value.error.code == "InUseSubnetCannotBeDeleted"
    assert arm.network.virtual_networks.get(group, "vnet").provisioning_state == "Succeeded"

    arm.network.network_interfaces.begin_delete(group, "nic").result()
    arm.network.subnets.begin_delete(group, "vnet", "default").result()
    arm.network.virtual_networks.begin_delete(group, "vnet").result()
    assert list(arm.network.virtual_networks.list(group)) == []


def test_subnet_back_references_nics(arm, net, group):
    net.vnet()
    nic = net.nic()
    subnet = arm.network.subnets.get(group, "vnet", "default")
    assert [c.id for c in subnet.ip_configurations] == [nic.ip_configurations[0].id]
    inline = arm.network.virtual_networks.get(group, "vnet").subnets[0]
    assert [c.id for c in inline.ip_configurations] == [nic.ip_configurations[0].id]


def test_subnet_with_nsg(arm, net, group):
    nsg = net.nsg()
    net.vnet(subnets={})
    made = arm.network.subnets.begin_create_or_update(
        group, "vnet", "guarded", {"properties": {"addressPrefix": "10.0.4.0/24", "networkSecurityGroup": {"id": nsg.id}}}
    ).result()
    assert made.network_security_group.id == nsg.id
    assert [s.id for s in arm.network.network_security_groups.get(group, "nsg").subnets] == [made.id]
    with pytest.raises(HttpResponseError) as err:
        arm.network.subnets.begin_create_or_update(
            group, "vnet", "bad", {"properties": {"addressPrefix": "10.0.5.0/24",
                                                  "networkSecurityGroup": {"id": nsg.id + "x"}}})
    assert err.value.error.code == "InvalidResourceReference"
    assert f"Resource {nsg.id}x referenced by resource" in err.value.error.message
    # detaching the NSG clears the back-reference
    arm.network.subnets.begin_create_or_update(group, "vnet", "guarded", {"properties": {"addressPrefix": "10.0.4.0/24"}}).result()
    assert not arm.network.network_security_groups.get(group, "nsg").subnets


def test_lro_failure_sets_failed(arm, net, group, faults, location):
    faults.add_fault(match="Microsoft.Network/virtualNetworks/write", kind="lro_failure", code="InternalServerError",
                     message="Injected LRO failure.", count=1)
    body = {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    with pytest.raises(HttpResponseError) as err:
        arm.network.virtual_networks.begin_create_or_update(group, "doomed", body).result()
    assert "Injected LRO failure." in str(err.value)
    assert arm.network.virtual_networks.get(group, "doomed").provisioning_state == "Failed"
    assert arm.network.virtual_networks.begin_create_or_update(group, "doomed", body).result().provisioning_state == "Succeeded"


def test_group_delete_cascades(arm, net, group, location):
    net.vnet()
    pip = net.pip()
    nsg = net.nsg()
    net.nic(pip_id=pip.id, nsg_id=nsg.id)
    arm.resources.resource_groups.begin_delete(group).result()
    assert pip.ip_address
    arm.resources.resource_groups.create_or_update(group, {"location": location})
    for listing in (arm.network.virtual_networks.list(group), arm.network.network_interfaces.list(group),
                    arm.network.public_ip_addresses.list(group), arm.network.network_security_groups.list(group)):
        assert list(listing) == []


def test_lro_protocol_headers(arm, group, location):
    """PUT: 201 then 200 with Azure-AsyncOperation + Retry-After (never 202); DELETE: 202 + both headers."""
    seen: list[tuple[str, int, dict[str, str]]] = []  # header names lower-cased

    def hook(response):
        http = response.http_response
        seen.append((response.http_request.method, http.status_code, {k.lower(): v for k, v in http.headers.items()}))

    pips = arm.network.public_ip_addresses
    body = {"location": location, "sku": {"name": "Standard"}}
    pips.begin_create_or_update(group, "hdr", body, raw_response_hook=hook).result()
    pips.begin_create_or_update(group, "hdr", body, raw_response_hook=hook).result()
    pips.begin_delete(group, "hdr", raw_response_hook=hook).result()
    first = [(m, s, h) for m, s, h in seen if m in ("PUT", "DELETE")]
    assert [(m, s) for m, s, _h in first] == [("PUT", 201), ("PUT", 200), ("DELETE", 202)]
    for _method, _status, headers in first:
        assert "/providers/Microsoft.Network/locations/" in headers["azure-asyncoperation"]
        assert "/operations/" in headers["azure-asyncoperation"]
        assert headers["retry-after"]
    assert "location" in first[2][2]
