"""ARM request → RBAC action, and Azure's Actions/NotActions matching, on the paths the real SDKs send."""

from __future__ import annotations

import pytest

from devstack.rbac import (
    Role,
    UnmappedRequest,
    group_delete_actions,
    linked_actions,
    matches,
    not_rbac,
    required_action,
)

SUB = "/subscriptions/6d0c1f3e-0000-4000-8000-000000000001"
RG = SUB + "/resourceGroups/rg-imgf-web-1a2b"
COMPUTE = RG + "/providers/Microsoft.Compute"
GALLERY = "/subscriptions/s/resourceGroups/rg-golden-images/providers/Microsoft.Compute/galleries/gal_golden"


@pytest.mark.parametrize(("method", "path", "action"), [
    # resource groups: the SDK sends lower-case resourcegroups; the action has ARM's spelling
    ("PUT", SUB + "/resourcegroups/rg-imgf-web-1a2b", "Microsoft.Resources/subscriptions/resourceGroups/write"),
    ("HEAD", SUB + "/resourcegroups/rg-imgf-web-1a2b", "Microsoft.Resources/subscriptions/resourceGroups/read"),
    ("DELETE", SUB + "/resourcegroups/rg-imgf-web-1a2b", "Microsoft.Resources/subscriptions/resourceGroups/delete"),
    ("GET", SUB + "/resourcegroups", "Microsoft.Resources/subscriptions/resourceGroups/read"),
    ("GET", RG + "/resources", "Microsoft.Resources/subscriptions/resourceGroups/resources/read"),
    ("GET", SUB, "Microsoft.Resources/subscriptions/read"),
    ("GET", SUB + "/operationresults/abc", "Microsoft.Resources/subscriptions/operationresults/read"),
    # verbs on resources, and POST actions
    ("PUT", COMPUTE + "/virtualMachines/vm-build", "Microsoft.Compute/virtualMachines/write"),
    ("PATCH", COMPUTE + "/virtualMachines/vm-build", "Microsoft.Compute/virtualMachines/write"),
    ("GET", COMPUTE + "/virtualMachines/vm-build?$expand=instanceView", "Microsoft.Compute/virtualMachines/read"),
    ("GET", COMPUTE + "/virtualMachines/vm-build/instanceView", "Microsoft.Compute/virtualMachines/instanceView/read"),
    ("POST", COMPUTE + "/virtualMachines/vm-build/deallocate", "Microsoft.Compute/virtualMachines/deallocate/action"),
    ("POST", COMPUTE + "/virtualMachines/vm-build/runCommand", "Microsoft.Compute/virtualMachines/runCommand/action"),
    ("POST", RG + "/providers/Microsoft.Storage/storageAccounts/imgf1/listKeys",
     "Microsoft.Storage/storageAccounts/listKeys/action"),
    ("POST", SUB + "/providers/Microsoft.Storage/checkNameAvailability", "Microsoft.Storage/checkNameAvailability/read"),
    # nested types keep every type and drop every name
    ("PUT", GALLERY + "/images/debian12-web/versions/1.0.3", "Microsoft.Compute/galleries/images/versions/write"),
    ("GET", GALLERY + "/images/debian12-web/versions", "Microsoft.Compute/galleries/images/versions/read"),
    ("PUT", RG + "/providers/Microsoft.Storage/storageAccounts/imgf1/blobServices/default/containers/vhds",
     "Microsoft.Storage/storageAccounts/blobServices/containers/write"),
    ("GET", SUB + "/providers/Microsoft.Compute/locations/westeurope/publishers/Debian/artifacttypes/vmimage/offers"
     "/debian-12/skus/12-gen2/versions", "Microsoft.Compute/locations/publishers/artifacttypes/offers/skus/versions/read"),
    # operation-status URLs of long-running operations are reads of the provider's operation resource
    ("GET", SUB + "/providers/Microsoft.Compute/locations/westeurope/operations/op1",
     "Microsoft.Compute/locations/operations/read"),
    ("GET", SUB + "/providers/Microsoft.Compute/locations/westeurope/capsOperations/op1",
     "Microsoft.Compute/locations/capsOperations/read"),
    ("GET", SUB + "/providers/Microsoft.Network/locations/westeurope/operations/op1",
     "Microsoft.Network/locations/operations/read"),
    ("GET", SUB + "/providers/Microsoft.Storage/locations/westeurope/asyncoperations/op1",
     "Microsoft.Storage/operations/read"),
    # extension resources: the namespace after the last /providers/, whatever the scope
    ("PUT", RG + "/providers/Microsoft.Authorization/locks/factory-lock", "Microsoft.Authorization/locks/write"),
    ("PUT", GALLERY + "/images/debian12-web/providers/Microsoft.Authorization/roleAssignments/0f1e",
     "Microsoft.Authorization/roleAssignments/write"),
    ("GET", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.0"
     "/providers/Microsoft.Authorization/locks", "Microsoft.Authorization/locks/read"),
    # a percent-encoded scope with a doubled slash (ManagementLockClient.*_by_scope) reads as the plain one
    ("DELETE", "/%2Fsubscriptions%2Fs%2FresourceGroups%2Frg/providers/Microsoft.Authorization/locks/keep",
     "Microsoft.Authorization/locks/delete"),
    ("GET", "/providers/Microsoft.Authorization/roleDefinitions", "Microsoft.Authorization/roleDefinitions/read"),
])
def test_each_request_needs_the_action_arm_checks(method: str, path: str, action: str) -> None:
    assert required_action(method, path) == action


@pytest.mark.parametrize(("method", "path", "why"), [
    ("GET", "/_emulator/requests", "local Azure"),
    ("PUT", "/_emulator/blobs/acct/vhds/web/1.0.0.vhd", "local Azure"),
    ("POST", "/72f988bf-0000-4000-8000-000000000000/oauth2/v2.0/token", "sign-in"),
    ("GET", "/72f988bf-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration", "sign-in"),
    ("GET", "/metadata/identity/oauth2/token", "metadata"),
    ("GET", "/msi/token", "managed identity"),
])
def test_requests_rbac_does_not_authorize_map_to_no_action(method: str, path: str, why: str) -> None:
    assert required_action(method, path) is None
    reason = not_rbac(path)
    assert reason is not None and why in reason


def test_a_resource_named_like_a_skipped_endpoint_is_still_an_arm_request() -> None:
    assert required_action("GET", COMPUTE + "/virtualMachines/metadata") == "Microsoft.Compute/virtualMachines/read"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/weather/today"),  # neither ARM nor a known non-RBAC endpoint: never silently passed
    ("POST", COMPUTE + "/virtualMachines/vm-build"),  # a POST needs an operation name
    ("OPTIONS", COMPUTE + "/virtualMachines/vm-build"),
    ("GET", SUB + "/providers/Microsoft.Compute"),
])
def test_what_cannot_be_mapped_is_an_error(method: str, path: str) -> None:
    with pytest.raises(UnmappedRequest, match=method):
        required_action(method, path)


def test_writes_that_attach_network_resources_need_their_join_actions() -> None:
    assert linked_actions("Microsoft.Network/networkInterfaces/write") == (
        "Microsoft.Network/virtualNetworks/subnets/join/action", "Microsoft.Network/publicIPAddresses/join/action")
    assert linked_actions("microsoft.compute/virtualmachines/WRITE") == ("Microsoft.Network/networkInterfaces/join/action",)
    assert linked_actions("Microsoft.Compute/virtualMachines/read") == ()


@pytest.mark.parametrize(("pattern", "action", "expected"), [
    ("Microsoft.Compute/virtualMachines/write", "microsoft.compute/VIRTUALMACHINES/write", True),
    ("Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/writeX", False),
    ("Microsoft.Compute/*", "Microsoft.Compute/galleries/images/versions/delete", True),
    ("*/read", "Microsoft.Network/locations/operations/read", True),
    ("*/read", "Microsoft.Network/networkInterfaces/write", False),
    ("Microsoft.Compute/virtualMachines/*/action", "Microsoft.Compute/virtualMachines/deallocate/action", True),
    ("Microsoft.Compute/virtualMachines/*/action", "Microsoft.Compute/virtualMachines/write", False),
    ("Microsoft.Compute/galleries/images/versions/read", "Microsoft.Compute/galleries/images/read", False),
    ("Microsoft.Storage/storageAccounts/listkeys/action", "Microsoft.Storage/storageAccounts/listKeys/action", True),
    ("Microsoft.Compute/galleries.read", "Microsoft.Compute/galleriesXread", False),  # a dot is a dot
])
def test_patterns_match_as_azure_matches_them(pattern: str, action: str, expected: bool) -> None:
    assert matches(pattern, action) is expected


def test_not_actions_subtract_from_actions() -> None:
    role = Role.from_definition({"Name": "r", "Actions": ["Microsoft.Compute/*"],
                                 "NotActions": ["Microsoft.Compute/*/delete"]})
    assert role.allows("Microsoft.Compute/virtualMachines/write")
    assert not role.allows("Microsoft.Compute/virtualMachines/delete")
    assert not role.allows("Microsoft.Network/networkInterfaces/write")


def test_a_definition_reads_in_either_key_case_and_reports_unused_grants() -> None:
    role = Role.from_definition({"roleName": "x", "actions": ["Microsoft.Compute/images/read",
                                                              "Microsoft.Compute/images/delete", "*/read"]})
    assert role.allows("Microsoft.Compute/images/delete")
    assert role.unused(["microsoft.compute/images/READ"]) == ["Microsoft.Compute/images/delete"]
    assert Role.from_definition({}).allows("Microsoft.Compute/images/read") is False


def test_deleting_a_group_needs_delete_on_what_was_created_in_it() -> None:
    build = SUB + "/resourceGroups/rg-imgf-web-1a2b"
    requests = [
        ("PUT", SUB + "/resourcegroups/rg-imgf-web-1a2b"),
        ("PUT", build + "/providers/Microsoft.Network/networkInterfaces/nic-build"),
        ("PUT", build + "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"),  # child: goes with its vnet
        ("PUT", build + "/providers/Microsoft.Compute/virtualMachines/vm-build"),
        ("PUT", build + "/providers/Microsoft.Authorization/locks/keep"),  # an extension resource, not a resource in it
        ("POST", build + "/providers/Microsoft.Compute/virtualMachines/vm-build/deallocate"),
        ("PUT", GALLERY + "/images/debian12-web/versions/1.0.3"),  # another group, never deleted
        ("DELETE", SUB + "/resourcegroups/RG-IMGF-WEB-1A2B"),
        ("GET", "/_emulator/requests"),
    ]
    assert group_delete_actions(requests) == {
        "Microsoft.Network/networkInterfaces/delete", "Microsoft.Network/virtualNetworks/delete",
        "Microsoft.Compute/virtualMachines/delete", "Microsoft.Compute/disks/delete"}  # disks: the VM's OS disk
    assert group_delete_actions(requests[:-2]) == set()  # nothing deleted: nothing more needed
