"""AccessHook against the local Azure: the factory's delete lock, lifting only it, and idempotent role assignments."""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.mgmt.network.models import AddressSpace, VirtualNetwork, VirtualNetworkPropertiesFormat
from azure.mgmt.resource.locks.models import ManagementLockObject

from image_factory.credentials import ssh_key_pair
from image_factory.definitions import Region, load_file
from image_factory.hooks.access import LOCK_NOTES, AccessHook, UnknownRoleError
from image_factory.hooks.compute import ComputeHook
from image_factory.hooks.gallery import GalleryHook
from image_factory.hooks.network import NetworkHook
from image_factory.naming import FACTORY_LOCK, TAG_VERSION_RUN, role_assignment_name
from tests.localazure import LocalAzure
from tests.plugins.image_factory.hooks.conftest import request_seq, requests_since

pytestmark = pytest.mark.guests("simulated")

HOME = "westeurope"
IMAGES = Path(__file__).resolve().parents[4] / "include" / "images"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
VERSIONS = itertools.count(1)


def remove_locks(hook: AccessHook, group: str) -> None:
    """Every lock on the group or beneath it, so the group can be deleted after a test."""
    group_id = str(hook.resources.resource_groups.get(group).id).lower()
    for lock in hook.locks.management_locks.list_at_resource_group_level(group):
        if str(lock.id).lower().startswith(group_id + "/"):
            hook.locks.management_locks.delete_by_scope(str(lock.id).rsplit("/providers/", 1)[0], str(lock.name))


def lock_names(hook: AccessHook, group: str) -> list[str]:
    return sorted(str(lock.name) for lock in hook.locks.management_locks.list_at_resource_group_level(group))


def keep() -> ManagementLockObject:
    """A lock someone other than the factory places (an app team keeping what it deploys from)."""
    return ManagementLockObject(level="CanNotDelete", notes="kept by the app team")


def scope_locked(err: pytest.ExceptionInfo[ResourceExistsError]) -> bool:
    return err.value.status_code == 409 and err.value.error is not None and err.value.error.code == "ScopeLocked"


@pytest.fixture(scope="module")
def access(azure_conn: str) -> AccessHook:
    return AccessHook(azure_conn)


@pytest.fixture
def unlocked_after(access: AccessHook, group: str) -> Iterator[str]:
    """The test's group; its locks are removed afterwards (also on failure) so the group can go."""
    yield group
    remove_locks(access, group)


@pytest.fixture(scope="module")
def golden(access: AccessHook, azure_conn: str) -> Iterator[dict[str, str]]:
    """A gallery group with a gallery, an image definition and a generalized source VM (in a build group)."""
    run = uuid.uuid4().hex[:8]
    build, golden_group, gallery = f"test-access-build-{run}", f"test-access-golden-{run}", f"gal_access_{run}"
    groups = access.resources.resource_groups
    for name in (build, golden_group):
        groups.create_or_update(name, {"location": HOME, "tags": {"factory": "tests"}})
    try:
        net = NetworkHook(azure_conn)
        nic = net.ensure_build_network(build, HOME, vnet=f"vnet-{run}", subnet="build", nsg=f"nsg-{run}",
                                       public_ip=f"pip-{run}", nic=f"nic-{run}", allow_from=net.allowed_source(),
                                       ports=[22], tags={})["nic_id"]
        compute = ComputeHook(azure_conn)
        vm = compute.ensure_vm(
            build, f"vm-{run}", location=HOME, size="Standard_D2s_v5",
            image={"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"},
            os_type="Linux", computer_name=f"build-{run}", admin_username="builder",
            ssh_public_key=ssh_key_pair("access-tests-secret-0123456789", run).public_openssh, nic_id=nic, tags={})
        compute.deallocate(build, f"vm-{run}")
        compute.generalize(build, f"vm-{run}")
        gallery_hook = GalleryHook(azure_conn)
        gallery_hook.ensure_gallery(golden_group, gallery, HOME, {"factory": "tests"})
        definition = dataclasses.replace(load_file(IMAGES / "debian12-web.yaml"), definition=f"def-{run}",
                                         sku=f"access-{run}", gallery_location=HOME)
        definition_id = gallery_hook.ensure_image_definition(golden_group, gallery, definition)
        yield {"group": golden_group, "gallery": gallery, "definition": definition.definition,
               "definition_id": definition_id, "vm_id": str(vm["id"])}
    finally:
        for name in (golden_group, build):
            remove_locks(access, name)
            groups.begin_delete(name).result()


def publish(azure_conn: str, golden: dict[str, str]) -> tuple[str, str]:
    """A new version of the test definition, replicated: (version, id)."""
    hook = GalleryHook(azure_conn)
    version = f"1.0.{next(VERSIONS)}"
    where = (golden["group"], golden["gallery"], golden["definition"], version)
    version_id = hook.begin_create_version(*where, location=HOME, source_id=golden["vm_id"],
                                           regions=[{"name": HOME}], tags={})
    deadline = time.monotonic() + 120
    while (status := hook.version_status(*where)) is None or status["provisioning_state"] != "Succeeded":
        assert time.monotonic() < deadline, f"version {version} was not published: {status}"
        time.sleep(0.2)
    return version, version_id


# locks --------------------------------------------------------------------------------------------
def test_delete_lock_is_made_once_and_refuses_the_group_delete(access: AccessHook, local_azure: LocalAzure,
                                                                unlocked_after: str) -> None:
    group = unlocked_after
    lock_id = access.ensure_delete_lock(group)
    group_id = str(access.resources.resource_groups.get(group).id)
    assert lock_id == f"{group_id}/providers/Microsoft.Authorization/locks/{FACTORY_LOCK}"

    seq = request_seq(local_azure)
    assert access.ensure_delete_lock(group) == lock_id
    assert [e for e in requests_since(local_azure, seq) if e["method"] != "GET"] == [], "a second ensure wrote"
    (lock,) = access.locks.management_locks.list_at_resource_group_level(group)
    assert (lock.name, lock.level, lock.notes) == (FACTORY_LOCK, "CanNotDelete", LOCK_NOTES)
    assert "golden-image factory" in LOCK_NOTES and len(LOCK_NOTES) <= 512

    with pytest.raises(ResourceExistsError) as err:
        access.resources.resource_groups.begin_delete(group).result()
    assert scope_locked(err) and group_id.lower() in str(err.value.message).lower()
    assert access.resources.resource_groups.check_existence(group)


def test_lock_lifted_restores_only_the_factory_lock_even_when_the_body_raises(access: AccessHook,
                                                                              unlocked_after: str) -> None:
    group = unlocked_after
    net = access.network.virtual_networks
    for name in ("kept", "spare"):
        net.begin_create_or_update(group, name, VirtualNetwork(location=HOME, properties=VirtualNetworkPropertiesFormat(
            address_space=AddressSpace(address_prefixes=["10.30.0.0/16"])))).result()
    kept_id = str(net.get(group, "kept").id)
    access.locks.management_locks.create_or_update_by_scope(kept_id, "app-team-keep", keep())
    access.ensure_delete_lock(group)
    with pytest.raises(ResourceExistsError) as err:  # the factory lock refuses any delete in the group
        net.begin_delete(group, "spare").result()
    assert scope_locked(err)

    with pytest.raises(RuntimeError, match="retention broke"), access.lock_lifted(group):
        assert lock_names(access, group) == ["app-team-keep"]
        net.begin_delete(group, "spare").result()  # only the factory's lock was in the way
        with pytest.raises(ResourceExistsError) as err:
            net.begin_delete(group, "kept").result()
        assert scope_locked(err), "another owner's lock must stay while the factory's is lifted"
        raise RuntimeError("retention broke")

    assert lock_names(access, group) == sorted(["app-team-keep", FACTORY_LOCK])
    restored = access.locks.management_locks.get_at_resource_group_level(group, FACTORY_LOCK)
    assert (restored.level, restored.notes) == ("CanNotDelete", LOCK_NOTES)
    assert [v.name for v in net.list(group)] == ["kept"]
    with pytest.raises(ResourceExistsError) as err:
        access.resources.resource_groups.begin_delete(group).result()
    assert scope_locked(err)


def test_lock_lifted_leaves_the_group_locked_when_it_was_not(access: AccessHook, unlocked_after: str) -> None:
    with access.lock_lifted(unlocked_after):
        assert lock_names(access, unlocked_after) == []
    assert lock_names(access, unlocked_after) == [FACTORY_LOCK]


def test_locks_covering_sees_the_group_lock_and_a_lock_on_one_version(access: AccessHook, azure_conn: str,
                                                                      golden: dict[str, str]) -> None:
    group = golden["group"]
    version, version_id = publish(azure_conn, golden)
    group_lock = access.ensure_delete_lock(group)
    pin = access.locks.management_locks.create_or_update_by_scope(version_id, f"keep-{version}", keep())
    try:
        covering = {lock["name"]: lock for lock in access.locks_covering(version_id)}
        assert set(covering) == {FACTORY_LOCK, f"keep-{version}"}
        group_id = str(access.resources.resource_groups.get(group).id)
        assert covering[FACTORY_LOCK] == {"id": group_lock, "name": FACTORY_LOCK, "level": "CanNotDelete",
                                          "scope": group_id}
        assert covering[f"keep-{version}"]["scope"].lower() == version_id.lower()
        assert covering[f"keep-{version}"]["id"] == pin.id and covering[f"keep-{version}"]["level"] == "CanNotDelete"
        # the definition is not under the version's lock; the group's lock covers it
        assert [lock["name"] for lock in access.locks_covering(golden["definition_id"])] == [FACTORY_LOCK]
    finally:
        access.locks.management_locks.delete_by_scope(version_id, f"keep-{version}")


def test_retention_deletes_a_version_only_with_the_factory_lock_lifted(access: AccessHook, azure_conn: str,
                                                                       golden: dict[str, str]) -> None:
    gallery = GalleryHook(azure_conn)
    where = (golden["group"], golden["gallery"], golden["definition"])
    version, version_id = publish(azure_conn, golden)
    access.ensure_delete_lock(golden["group"])
    with pytest.raises(ResourceExistsError) as err:
        gallery.delete_version(*where, version)
    assert scope_locked(err)
    pin = f"keep-{version}"
    access.locks.management_locks.create_or_update_by_scope(version_id, pin, keep())
    try:
        with access.lock_lifted(golden["group"]), pytest.raises(ResourceExistsError) as err:
            gallery.delete_version(*where, version)
        assert scope_locked(err), "a version under someone else's lock must survive the factory's retention"
    finally:
        access.locks.management_locks.delete_by_scope(version_id, pin)
    with access.lock_lifted(golden["group"]):
        assert gallery.delete_version(*where, version) is True
    assert gallery.version_status(*where, version) is None
    assert FACTORY_LOCK in lock_names(access, golden["group"])


def test_capture_replaces_a_failed_version_in_the_locked_group(access: AccessHook, azure_conn: str,
                                                               local_azure: LocalAzure, golden: dict[str, str]) -> None:
    """A retried capture deletes its own failed version through the factory's lock, and the lock stays."""
    from image_factory.pipeline.build import Build
    from image_factory.pipeline.steps import capture

    gallery = GalleryHook(azure_conn)
    version, run_id = f"1.0.{next(VERSIONS)}", f"manual__{uuid.uuid4().hex}"
    where = (golden["group"], golden["gallery"], golden["definition"], version)
    access.ensure_delete_lock(golden["group"])
    local_azure.ops("POST", "replication/faults", {"region": HOME, "count": 1})
    try:
        gallery.begin_create_version(*where, location=HOME, source_id=golden["vm_id"], regions=[{"name": HOME}],
                                     tags={TAG_VERSION_RUN: run_id})
        deadline = time.monotonic() + 120
        while (status := gallery.version_status(*where)) is None or status["provisioning_state"] != "Failed":
            assert time.monotonic() < deadline, f"the injected fault did not fail version {version}: {status}"
            time.sleep(0.2)
    finally:
        local_azure.ops("DELETE", "replication/faults")
    definition = dataclasses.replace(load_file(IMAGES / "debian12-web.yaml"), gallery_resource_group=golden["group"],
                                     gallery_name=golden["gallery"], definition=golden["definition"],
                                     gallery_location=HOME, regions=(Region(HOME),))
    plan = {"version": version, "run_id": run_id, "regions": [{"name": HOME}], "reason": "retry",
            "source": {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "0.1.0"}}
    out = capture(Build(definition, plan, azure_conn, "access-tests-secret-0123456789"), golden["vm_id"])
    assert out["version_id"].lower().endswith(f"/versions/{version}")
    deadline = time.monotonic() + 120
    while (status := gallery.version_status(*where)) is None or status["provisioning_state"] != "Succeeded":
        assert time.monotonic() < deadline, f"the replacement of version {version} was not published: {status}"
        time.sleep(0.2)
    assert FACTORY_LOCK in lock_names(access, golden["group"])


# role assignments ----------------------------------------------------------------------------------
def test_role_assignment_is_made_once(access: AccessHook, local_azure: LocalAzure, golden: dict[str, str]) -> None:
    scope, principal = golden["definition_id"], str(uuid.uuid4())
    first = access.ensure_role_assignment(scope, principal, "Reader", "Group")
    assert first == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{role_assignment_name(scope, principal, READER)}"
    seq = request_seq(local_azure)
    assert access.ensure_role_assignment(scope, principal.upper(), "Reader", "Group") == first
    assert [e for e in requests_since(local_azure, seq) if e["method"] != "GET"] == [], "a retry wrote again"

    listed = list(access.authorization.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal}'"))
    assert [a.id for a in listed] == [first]
    made = listed[0]
    assert made.role_definition_id.endswith(f"/roleDefinitions/{READER}")
    assert (made.principal_type, made.scope.lower()) == ("Group", scope.lower())
    other_role = access.ensure_role_assignment(scope, principal, "Contributor", "Group")
    assert other_role != first  # a second role for the same principal is a second assignment


def test_an_assignment_made_by_hand_counts_as_made(access: AccessHook, golden: dict[str, str]) -> None:
    scope, principal = golden["definition_id"], str(uuid.uuid4())
    by_hand = access.authorization.role_assignments.create(scope, str(uuid.uuid4()), {
        "role_definition_id": f"/subscriptions/{access.subscription_id}/providers/Microsoft.Authorization/"
                              f"roleDefinitions/{READER}",
        "principal_id": principal, "principal_type": "User"})
    assert access.ensure_role_assignment(scope, principal, "Reader", "User") == by_hand.id
    listed = access.authorization.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal}'")
    assert [a.id for a in listed] == [by_hand.id]


def test_an_unknown_role_is_an_error_naming_the_field(access: AccessHook, golden: dict[str, str]) -> None:
    scope, principal = golden["definition_id"], str(uuid.uuid4())
    with pytest.raises(UnknownRoleError, match=r"^sharing\[1\]\.role: must name a role definition .*'Readr'"):
        access.ensure_role_assignment(scope, principal, "Readr", "Group", field="sharing[1].role")
    assert isinstance(UnknownRoleError("x"), ValueError)  # the operators fail it at once, no retry
    listed = access.authorization.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal}'")
    assert list(listed) == []
