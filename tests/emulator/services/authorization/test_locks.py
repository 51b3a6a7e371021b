"""Management locks through the real azure-mgmt-resource-locks SDK: CRUD at every scope, and what they block."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

pytestmark = pytest.mark.guests("simulated")


def _name() -> str:
    return f"lock-{uuid.uuid4().hex[:6]}"


def _scope_locked(err: HttpResponseError, target: str, action: str, locked: str) -> None:
    assert err.status_code == 409
    assert err.error is not None and err.error.code == "ScopeLocked"
    expected = (
        f"The scope '{target}' cannot perform {action} operation because following scope(s) are locked: "
        f"'{locked}'. Please remove the lock and try again."
    )
    assert err.error.message.lower() == expected.lower(), err.error.message


@pytest.mark.azure
def test_group_lock_crud(arm, group, unlock):
    locks = arm.locks.management_locks
    name = _name()
    owner = str(uuid.uuid4())
    created = locks.create_or_update_at_resource_group_level(
        group, name, {"level": "CanNotDelete", "notes": "golden images live here", "owners": [{"application_id": owner}]}
    )
    unlock.append(created.id)
    group_id = arm.resources.resource_groups.get(group).id
    assert created.id == f"{group_id}/providers/Microsoft.Authorization/locks/{name}"
    assert (created.name, created.type, created.level) == (name, "Microsoft.Authorization/locks", "CanNotDelete")
    assert created.notes == "golden images live here"
    assert [o.application_id for o in created.owners] == [owner]

    got = locks.get_at_resource_group_level(group, name)
    assert (got.id, got.level, got.notes) == (created.id, "CanNotDelete", "golden images live here")
    assert name in [lock.name for lock in locks.list_at_resource_group_level(group)]

    updated = locks.create_or_update_at_resource_group_level(group, name, {"level": "ReadOnly"})
    assert updated.level == "ReadOnly" and updated.id == created.id

    locks.delete_at_resource_group_level(group, name)
    with pytest.raises(ResourceNotFoundError):
        locks.get_at_resource_group_level(group, name)
    assert name not in [lock.name for lock in locks.list_at_resource_group_level(group)]
    locks.delete_at_resource_group_level(group, name)  # deleting again is a no-op (204)


def test_subscription_lock_crud_and_inheritance_in_lists(arm, group, unlock):
    locks = arm.locks.management_locks
    sub_lock, group_lock = _name(), _name()
    created = locks.create_or_update_at_subscription_level(sub_lock, {"level": "CanNotDelete", "notes": "sub"})
    unlock.append(created.id)
    assert created.id == f"/subscriptions/{arm.subscription_id}/providers/Microsoft.Authorization/locks/{sub_lock}"
    unlock.append(locks.create_or_update_at_resource_group_level(group, group_lock, {"level": "ReadOnly"}).id)

    assert locks.get_at_subscription_level(sub_lock).notes == "sub"
    in_sub = {lock.name for lock in locks.list_at_subscription_level()}
    assert {sub_lock, group_lock} <= in_sub
    # a group's list shows its own locks and the ones it inherits from the subscription
    in_group = {lock.name for lock in locks.list_at_resource_group_level(group)}
    assert {sub_lock, group_lock} <= in_group

    locks.delete_at_subscription_level(sub_lock)
    with pytest.raises(ResourceNotFoundError) as err:
        locks.get_at_subscription_level(sub_lock)
    assert err.value.error.code == "LockNotFound"
    assert sub_lock not in {lock.name for lock in locks.list_at_subscription_level()}


@pytest.mark.azure
def test_by_scope_percent_encodes_the_scope(arm, group, unlock):
    locks = arm.locks.management_locks
    scope = arm.resources.resource_groups.get(group).id
    name = _name()
    created = locks.create_or_update_by_scope(scope, name, {"level": "CanNotDelete", "notes": "by scope"})
    unlock.append(created.id)
    assert created.id == f"{scope}/providers/Microsoft.Authorization/locks/{name}"
    assert locks.get_by_scope(scope, name).notes == "by scope"
    assert locks.get_at_resource_group_level(group, name).id == created.id  # the same lock, either way
    assert name in [lock.name for lock in locks.list_by_scope(scope)]
    locks.delete_by_scope(scope, name)
    with pytest.raises(ResourceNotFoundError):
        locks.get_by_scope(scope, name)


@pytest.mark.azure
def test_resource_level_lock(arm, group, vnet, unlock):
    locks = arm.locks.management_locks
    name = _name()
    created = locks.create_or_update_at_resource_level(
        group, "Microsoft.Network", "", "virtualNetworks", vnet, name, {"level": "CanNotDelete"}
    )
    unlock.append(created.id)
    vnet_id = arm.network.virtual_networks.get(group, vnet).id
    assert created.id.lower() == f"{vnet_id}/providers/Microsoft.Authorization/locks/{name}".lower()
    got = locks.get_at_resource_level(group, "Microsoft.Network", "", "virtualNetworks", vnet, name)
    assert got.level == "CanNotDelete"
    assert [lock.name for lock in locks.list_at_resource_level(group, "Microsoft.Network", "", "virtualNetworks", vnet)] == [name]
    assert name in [lock.name for lock in locks.list_at_resource_group_level(group)]  # locks below the group
    assert locks.get_by_scope(vnet_id, name).id == created.id
    locks.delete_at_resource_level(group, "Microsoft.Network", "", "virtualNetworks", vnet, name)
    assert list(locks.list_at_resource_level(group, "Microsoft.Network", "", "virtualNetworks", vnet)) == []


@pytest.mark.azure
@pytest.mark.parametrize("level", ["NotSpecified", "Frozen"])
def test_only_can_not_delete_and_read_only_levels(arm, group, level):
    with pytest.raises(HttpResponseError) as err:
        arm.locks.management_locks.create_or_update_at_resource_group_level(group, _name(), {"level": level})
    assert err.value.status_code == 400


def test_lock_notes_limit_and_missing_scopes(arm, group):
    locks = arm.locks.management_locks
    with pytest.raises(HttpResponseError) as err:
        locks.create_or_update_at_resource_group_level(group, _name(), {"level": "ReadOnly", "notes": "x" * 513})
    assert err.value.status_code == 400
    with pytest.raises(ResourceNotFoundError) as err:
        locks.create_or_update_at_resource_group_level("no-such-group-for-locks", _name(), {"level": "ReadOnly"})
    assert err.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        locks.create_or_update_at_resource_level(group, "Microsoft.Network", "", "virtualNetworks", "nope", _name(),
                                                 {"level": "ReadOnly"})
    assert err.value.error.code == "ResourceNotFound"


# enforcement ------------------------------------------------------------------------------------
@pytest.mark.azure
def test_can_not_delete_lock_blocks_group_delete_until_removed(arm, group, unlock):
    locks, groups = arm.locks.management_locks, arm.resources.resource_groups
    lock = locks.create_or_update_at_resource_group_level(group, _name(), {"level": "CanNotDelete"})
    unlock.append(lock.id)
    group_id = groups.get(group).id
    with pytest.raises(ResourceExistsError) as err:
        groups.begin_delete(group).result()
    _scope_locked(err.value, f"/subscriptions/{arm.subscription_id}/resourcegroups/{group}", "delete", group_id)
    assert groups.check_existence(group)
    groups.update(group, {"tags": {"factory": "tests", "edited": "yes"}})  # CanNotDelete still allows writes
    assert groups.get(group).tags["edited"] == "yes"

    locks.delete_at_resource_group_level(group, lock.name)
    groups.begin_delete(group).result()
    assert not groups.check_existence(group)


@pytest.mark.azure
def test_read_only_lock_blocks_tag_update_and_delete(arm, group, unlock):
    locks, groups = arm.locks.management_locks, arm.resources.resource_groups
    lock = locks.create_or_update_at_resource_group_level(group, _name(), {"level": "ReadOnly"})
    unlock.append(lock.id)
    group_id = groups.get(group).id
    target = f"/subscriptions/{arm.subscription_id}/resourcegroups/{group}"
    with pytest.raises(ResourceExistsError) as err:
        groups.update(group, {"tags": {"factory": "tests", "edited": "yes"}})
    _scope_locked(err.value, target, "write", group_id)
    assert "edited" not in (groups.get(group).tags or {})
    with pytest.raises(ResourceExistsError) as err:
        groups.begin_delete(group).result()
    _scope_locked(err.value, target, "delete", group_id)
    locks.delete_at_resource_group_level(group, lock.name)
    groups.update(group, {"tags": {"factory": "tests", "edited": "yes"}})
    assert groups.get(group).tags["edited"] == "yes"


def test_subscription_lock_is_inherited_by_groups(arm, group, unlock):
    locks, groups = arm.locks.management_locks, arm.resources.resource_groups
    lock = locks.create_or_update_at_subscription_level(_name(), {"level": "CanNotDelete"})
    unlock.append(lock.id)
    with pytest.raises(ResourceExistsError) as err:
        groups.begin_delete(group).result()
    _scope_locked(err.value, f"/subscriptions/{arm.subscription_id}/resourcegroups/{group}", "delete",
                  f"/subscriptions/{arm.subscription_id}")
    locks.delete_at_subscription_level(lock.name)
    groups.begin_delete(group).result()
    assert not groups.check_existence(group)


@pytest.mark.azure
def test_locked_resource_blocks_its_delete_and_its_groups_delete(arm, group, vnet, unlock):
    locks, groups = arm.locks.management_locks, arm.resources.resource_groups
    vnet_id = arm.network.virtual_networks.get(group, vnet).id
    lock = locks.create_or_update_by_scope(vnet_id, _name(), {"level": "CanNotDelete"})
    unlock.append(lock.id)
    with pytest.raises(ResourceExistsError) as err:
        arm.network.virtual_networks.begin_delete(group, vnet).result()
    _scope_locked(err.value, vnet_id, "delete", vnet_id)
    with pytest.raises(ResourceExistsError) as err:
        groups.begin_delete(group).result()
    _scope_locked(err.value, f"/subscriptions/{arm.subscription_id}/resourcegroups/{group}", "delete", vnet_id)
    assert groups.check_existence(group)
    assert arm.network.virtual_networks.get(group, vnet).name == vnet

    locks.delete_by_scope(vnet_id, lock.name)
    groups.begin_delete(group).result()
    assert not groups.check_existence(group)


@pytest.mark.azure
def test_read_only_group_lock_blocks_creating_resources_in_it(arm, group, location, unlock):
    lock = arm.locks.management_locks.create_or_update_at_resource_group_level(group, _name(), {"level": "ReadOnly"})
    unlock.append(lock.id)
    with pytest.raises(ResourceExistsError) as err:
        arm.network.virtual_networks.begin_create_or_update(
            group, "blocked", {"location": location, "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}}
        ).result()
    assert err.value.error.code == "ScopeLocked"
    assert "cannot perform write operation" in err.value.error.message


@pytest.mark.azure
def test_read_only_lock_blocks_post_actions_can_not_delete_does_not(arm, group, vm, unlock):
    locks, vms = arm.locks.management_locks, arm.compute.virtual_machines
    vm_id = vms.get(group, vm).id
    read_only = locks.create_or_update_by_scope(vm_id, _name(), {"level": "ReadOnly"})
    unlock.append(read_only.id)
    with pytest.raises(ResourceExistsError) as err:
        vms.begin_deallocate(group, vm).result()
    _scope_locked(err.value, vm_id, "write", vm_id)
    assert vms.get(group, vm).name == vm  # reads still work
    locks.delete_by_scope(vm_id, read_only.name)

    keep = locks.create_or_update_by_scope(vm_id, _name(), {"level": "CanNotDelete"})
    unlock.append(keep.id)
    vms.begin_deallocate(group, vm).result()  # a delete lock allows actions
    statuses = [s.code for s in vms.instance_view(group, vm).statuses or []]
    assert "PowerState/deallocated" in statuses
    with pytest.raises(ResourceExistsError) as err:
        vms.begin_delete(group, vm).result()
    _scope_locked(err.value, vm_id, "delete", vm_id)
