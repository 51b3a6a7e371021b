"""Network security groups and security rules through the real azure-mgmt-network SDK."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.emulator.services.network.builders import ssh_rule

pytestmark = pytest.mark.azure


def test_create_get_list_update_delete(arm, net, group, location):
    nsgs = arm.network.network_security_groups
    created = net.nsg(rules=[ssh_rule(), ssh_rule("allow-winrm", 110, destinationPortRange="5986")])
    assert created.provisioning_state == "Succeeded" and created.resource_guid and created.etag
    rules = {r.name: r for r in created.security_rules}
    assert set(rules) == {"allow-ssh", "allow-winrm"}
    ssh = rules["allow-ssh"]
    assert (ssh.protocol, ssh.destination_port_range, ssh.source_address_prefix, ssh.priority, ssh.access,
            ssh.direction) == ("Tcp", "22", "203.0.113.7/32", 100, "Allow", "Inbound")
    assert ssh.id == f"{created.id}/securityRules/allow-ssh"
    assert ssh.provisioning_state == "Succeeded"
    assert created.id in [n.id for n in nsgs.list(group)]
    assert created.id in [n.id for n in nsgs.list_all()]

    updated = nsgs.begin_create_or_update(group, "nsg", {"location": location, "tags": {"a": "b"},
                                                         "properties": {"securityRules": [ssh_rule()]}}).result()
    assert [r.name for r in updated.security_rules] == ["allow-ssh"]
    assert updated.tags == {"a": "b"} and updated.resource_guid == created.resource_guid
    with pytest.raises(ResourceNotFoundError):
        arm.network.security_rules.get(group, "nsg", "allow-winrm")
    assert not nsgs.update_tags(group, "nsg", {"tags": {}}).tags

    nsgs.begin_delete(group, "nsg").result()
    with pytest.raises(ResourceNotFoundError):
        nsgs.get(group, "nsg")
    with pytest.raises(ResourceNotFoundError):
        arm.network.security_rules.get(group, "nsg", "allow-ssh")


def test_default_security_rules(arm, net, group):
    nsg = net.nsg()
    defaults = {r.name: r for r in nsg.default_security_rules}
    assert set(defaults) == {"AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound",
                             "AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"}
    deny = defaults["DenyAllInBound"]
    assert (deny.priority, deny.access, deny.direction, deny.protocol) == (65500, "Deny", "Inbound", "*")
    assert defaults["AllowInternetOutBound"].destination_address_prefix == "Internet"
    assert deny.id == f"{nsg.id}/defaultSecurityRules/DenyAllInBound"
    listed = list(arm.network.default_security_rules.list(group, "nsg"))
    assert len(listed) == 6
    assert arm.network.default_security_rules.get(group, "nsg", "AllowVnetInBound").priority == 65000
    with pytest.raises(ResourceNotFoundError):
        arm.network.default_security_rules.get(group, "nsg", "Nope")


def test_security_rule_child_resource(arm, net, group):
    net.nsg()
    rules = arm.network.security_rules
    made = rules.begin_create_or_update(group, "nsg", "ssh", ssh_rule()).result()
    assert made.provisioning_state == "Succeeded" and made.priority == 100
    assert [r.name for r in arm.network.network_security_groups.get(group, "nsg").security_rules] == ["ssh"]
    rules.begin_create_or_update(group, "nsg", "ssh", ssh_rule(priority=200)).result()
    assert rules.get(group, "nsg", "ssh").priority == 200
    assert arm.network.network_security_groups.get(group, "nsg").security_rules[0].priority == 200
    assert [r.name for r in rules.list(group, "nsg")] == ["ssh"]
    rules.begin_delete(group, "nsg", "ssh").result()
    assert arm.network.network_security_groups.get(group, "nsg").security_rules == []
    with pytest.raises(ResourceNotFoundError) as err:
        rules.get(group, "nsg", "ssh")
    assert err.value.error.code == "NotFound"


@pytest.mark.parametrize(("override", "code"), [
    ({"priority": 99}, "SecurityRuleInvalidPriority"),
    ({"priority": 4097}, "SecurityRuleInvalidPriority"),
    ({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
    ({"destinationPortRange": "30-20"}, "SecurityRuleInvalidPortRange"),
])
def test_rule_validation(arm, net, group, override, code):
    net.nsg()
    rule = ssh_rule(**override)
    rule["properties"] = {k: v for k, v in rule["properties"].items() if v is not None}
    with pytest.raises(HttpResponseError) as err:
        arm.network.security_rules.begin_create_or_update(group, "nsg", "bad", rule)
    assert err.value.status_code == 400
    assert err.value.error.code == code
    with pytest.raises(HttpResponseError) as err:
        net.nsg("other", rules=[{**rule, "name": "bad"}])
    assert err.value.error.code == code


def test_priority_message(arm, net, group):
    net.nsg()
    with pytest.raises(HttpResponseError) as err:
        arm.network.security_rules.begin_create_or_update(group, "nsg", "low", ssh_rule(priority=50))
    assert err.value.error.message == "Security rule has invalid Priority. Value provided: 50 Allowed range 100-4096."


def test_priority_must_be_unique_per_direction(arm, net, group):
    net.nsg(rules=[ssh_rule("first", 100)])
    with pytest.raises(HttpResponseError) as err:
        arm.network.security_rules.begin_create_or_update(group, "nsg", "second", ssh_rule("second", 100))
    assert err.value.status_code == 400
    assert err.value.error.code == "SecurityRuleConflict"
    assert err.value.error.message.startswith("Security rule second conflicts with rule first.")
    # same priority, other direction: fine
    made = arm.network.security_rules.begin_create_or_update(group, "nsg", "out", ssh_rule("out", 100, "Outbound")).result()
    assert made.direction == "Outbound"
    with pytest.raises(HttpResponseError) as err:
        net.nsg("dup", rules=[ssh_rule("a", 300), ssh_rule("b", 300)])
    assert err.value.error.code == "SecurityRuleConflict"


def test_rule_ranges_and_tags_accepted(arm, net, group):
    rule = ssh_rule(destinationPortRange=None, destinationPortRanges=["22", "5985-5986"],
                    sourceAddressPrefix="Internet", protocol="Udp")
    rule["properties"] = {k: v for k, v in rule["properties"].items() if v is not None}
    nsg = net.nsg(rules=[rule])
    made = nsg.security_rules[0]
    assert made.destination_port_ranges == ["22", "5985-5986"] and made.destination_port_range is None
    assert made.source_address_prefix == "Internet" and made.protocol == "Udp"


def test_nsg_in_use_cannot_be_deleted(arm, net, group):
    nsg = net.nsg()
    net.vnet()
    nic = net.nic(nsg_id=nsg.id)
    assert [n.id for n in arm.network.network_security_groups.get(group, "nsg").network_interfaces] == [nic.id]
    with pytest.raises(HttpResponseError) as err:
        arm.network.network_security_groups.begin_delete(group, "nsg")
    assert err.value.status_code == 400
    assert err.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"
    assert nic.id in err.value.error.message
    arm.network.network_interfaces.begin_delete(group, "nic").result()
    assert not arm.network.network_security_groups.get(group, "nsg").network_interfaces
    arm.network.network_security_groups.begin_delete(group, "nsg").result()
    with pytest.raises(ResourceNotFoundError):
        arm.network.network_security_groups.get(group, "nsg")


def test_invalid_names(arm, group, location):
    body = {"location": location}
    for name in ("-nsg", "nsg-", "x" * 81, "sp ace"):
        with pytest.raises(HttpResponseError) as err:
            arm.network.network_security_groups.begin_create_or_update(group, name, body)
        assert err.value.error.code == "InvalidResourceName"
    made = arm.network.network_security_groups.begin_create_or_update(group, "x" * 80, body).result()
    assert made.provisioning_state == "Succeeded"
