"""Role definitions and role assignments through the real azure-mgmt-authorization SDK."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

BUILTIN = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
    "1ef6a3be-d0ac-425d-8c01-acb62866290b": "Compute Gallery Sharing Admin",
}
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _role(arm, guid: str) -> str:
    return f"/subscriptions/{arm.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def _params(arm, guid: str, principal: str, principal_type: str | None = "ServicePrincipal") -> dict[str, str]:
    out = {"role_definition_id": _role(arm, guid), "principal_id": principal}
    if principal_type:
        out["principal_type"] = principal_type
    return out


@pytest.fixture
def group_scope(arm, group) -> str:  # type: ignore[no-untyped-def]
    return str(arm.resources.resource_groups.get(group).id)


# role definitions ---------------------------------------------------------------------------------
@pytest.mark.azure
@pytest.mark.parametrize(("guid", "role_name"), sorted(BUILTIN.items()))
def test_builtin_role_definitions_by_id(arm, guid, role_name):
    scope = f"/subscriptions/{arm.subscription_id}"
    found = arm.authorization.role_definitions.get(scope, guid)
    assert (found.name, found.role_name, found.role_type) == (guid, role_name, "BuiltInRole")
    assert found.id == _role(arm, guid)
    assert found.permissions and found.permissions[0].actions
    assert arm.authorization.role_definitions.get_by_id(_role(arm, guid)).role_name == role_name
    tenant_level = arm.authorization.role_definitions.get_by_id(f"/providers/Microsoft.Authorization/roleDefinitions/{guid}")
    assert tenant_level.role_name == role_name


@pytest.mark.azure
def test_role_definition_permissions_and_filter(arm, group_scope):
    defs = arm.authorization.role_definitions
    contributor = [d for d in defs.list(group_scope, filter="roleName eq 'Contributor'")]
    assert [d.name for d in contributor] == [CONTRIBUTOR]
    assert "Microsoft.Authorization/*/Write" in contributor[0].permissions[0].not_actions
    assert defs.get(group_scope, READER).permissions[0].actions == ["*/read"]
    names = {d.role_name for d in defs.list(f"/subscriptions/{arm.subscription_id}")}
    assert set(BUILTIN.values()) <= names


@pytest.mark.azure
def test_unknown_role_definition_is_not_found(arm):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.authorization.role_definitions.get(f"/subscriptions/{arm.subscription_id}", str(uuid.uuid4()))
    assert err.value.error.code == "RoleDefinitionDoesNotExist"


# role assignments ---------------------------------------------------------------------------------
def test_assignment_crud_at_group_scope(arm, group, group_scope):
    ras = arm.authorization.role_assignments
    name, principal = str(uuid.uuid4()), str(uuid.uuid4())
    created = ras.create(group_scope, name, _params(arm, CONTRIBUTOR, principal))
    assert created.id == f"{group_scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert (created.name, created.type) == (name, "Microsoft.Authorization/roleAssignments")
    assert (created.scope, created.principal_id, created.principal_type) == (group_scope, principal, "ServicePrincipal")
    assert created.role_definition_id == _role(arm, CONTRIBUTOR)
    assert created.created_on is not None and created.created_by

    assert ras.get(group_scope, name).principal_id == principal
    assert ras.get_by_id(created.id).name == name
    assert name in [a.name for a in ras.list_for_resource_group(group)]
    assert name in [a.name for a in ras.list_for_scope(group_scope)]
    assert name in [a.name for a in ras.list_for_subscription()]
    assert [a.name for a in ras.list_for_scope(group_scope, filter=f"principalId eq '{principal}'")] == [name]

    deleted = ras.delete(group_scope, name)
    assert deleted is not None and deleted.name == name
    with pytest.raises(ResourceNotFoundError) as err:
        ras.get(group_scope, name)
    assert err.value.error.code == "RoleAssignmentNotFound"
    assert ras.delete(group_scope, name) is None  # 204: nothing to delete
    assert name not in [a.name for a in ras.list_for_resource_group(group)]


def test_assignment_by_id_and_at_subscription_scope(arm, group_scope):
    ras = arm.authorization.role_assignments
    sub_scope = f"/subscriptions/{arm.subscription_id}"
    name, principal = str(uuid.uuid4()), str(uuid.uuid4())
    rid = f"{sub_scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    created = ras.create_by_id(rid, _params(arm, READER, principal, principal_type=None))
    try:
        assert created.id == rid and created.scope == sub_scope
        assert created.principal_type == "User"  # the service's default
        assert ras.get_by_id(rid).role_definition_id == _role(arm, READER)
        # inherited: a group's listing shows subscription assignments unless filtered with atScope()
        assert name in [a.name for a in ras.list_for_scope(group_scope)]
        assert name in [a.name for a in ras.list_for_scope(group_scope, filter="atScope()")]
        below = str(uuid.uuid4())
        ras.create(group_scope, below, _params(arm, READER, principal))
        assert below in [a.name for a in ras.list_for_scope(sub_scope)]
        assert below not in [a.name for a in ras.list_for_scope(sub_scope, filter="atScope()")]
        ras.delete(group_scope, below)
    finally:
        ras.delete_by_id(rid)
    with pytest.raises(ResourceNotFoundError):
        ras.get_by_id(rid)


def test_assignment_at_resource_scope(arm, group, vnet):
    ras = arm.authorization.role_assignments
    scope = arm.network.virtual_networks.get(group, vnet).id
    name = str(uuid.uuid4())
    created = ras.create(scope, name, _params(arm, "9980e02c-c2be-4d73-94e8-173b1dc7cf3c", str(uuid.uuid4())))
    assert created.scope.lower() == scope.lower()
    listed = ras.list_for_resource(group, "Microsoft.Network", "virtualNetworks", vnet)
    assert [a.name for a in listed] == [name]
    assert name in [a.name for a in ras.list_for_resource_group(group)]
    arm.resources.resource_groups.begin_delete(group).result()  # the group's delete takes its assignments along
    assert name not in [a.name for a in ras.list_for_subscription()]


def test_assignment_name_must_be_a_guid(arm, group_scope):
    with pytest.raises(HttpResponseError) as err:
        arm.authorization.role_assignments.create(group_scope, "not-a-guid", _params(arm, READER, str(uuid.uuid4())))
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidRoleAssignmentId"
    assert err.value.error.message == (
        "The role assignment ID 'not-a-guid' is not valid. The role assignment ID must be a GUID."
    )


def test_role_definition_must_exist(arm, group_scope):
    missing = str(uuid.uuid4())
    with pytest.raises(HttpResponseError) as err:
        arm.authorization.role_assignments.create(group_scope, str(uuid.uuid4()),
                                                  _params(arm, missing, str(uuid.uuid4())))
    assert err.value.status_code == 400
    assert err.value.error.code == "RoleDefinitionDoesNotExist"
    assert missing in err.value.error.message


def test_principal_id_must_be_a_guid(arm, group_scope):
    with pytest.raises(HttpResponseError) as err:
        arm.authorization.role_assignments.create(group_scope, str(uuid.uuid4()), _params(arm, READER, "someone"))
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidPrincipalId"


def test_same_principal_role_and_scope_twice_conflicts(arm, group_scope):
    ras = arm.authorization.role_assignments
    principal, first = str(uuid.uuid4()), str(uuid.uuid4())
    ras.create(group_scope, first, _params(arm, CONTRIBUTOR, principal))
    with pytest.raises(ResourceExistsError) as err:
        ras.create(group_scope, str(uuid.uuid4()), _params(arm, CONTRIBUTOR, principal))
    assert err.value.status_code == 409
    assert err.value.error.code == "RoleAssignmentExists"
    assert err.value.error.message == (
        f"The role assignment already exists. The ID of the existing role assignment is {first.replace('-', '')}."
    )
    # the same assignment again under its own name is idempotent; another role for the principal is fine
    assert ras.create(group_scope, first, _params(arm, CONTRIBUTOR, principal)).name == first
    ras.create(group_scope, str(uuid.uuid4()), _params(arm, READER, principal))
    with pytest.raises(ResourceExistsError) as err:
        ras.create(group_scope, first, _params(arm, READER, principal))
    assert err.value.error.code == "RoleAssignmentUpdateNotPermitted"


def test_assignment_on_missing_group_is_not_found(arm):
    scope = f"/subscriptions/{arm.subscription_id}/resourceGroups/no-such-group-for-rbac"
    with pytest.raises(ResourceNotFoundError) as err:
        arm.authorization.role_assignments.create(scope, str(uuid.uuid4()), _params(arm, READER, str(uuid.uuid4())))
    assert err.value.error.code == "ResourceGroupNotFound"
