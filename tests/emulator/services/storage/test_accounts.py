"""Storage accounts through azure-mgmt-storage: lifecycle, validation, global names, keys, containers."""

from __future__ import annotations

import base64
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.emulator.services.storage.conftest import (
    account_body,
    azurite,
    blob_service,
    first_key,
    unique_account,
)

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"


def error_of(exc: HttpResponseError) -> tuple[int | None, str | None, str]:
    body = exc.response.json()["error"]
    return exc.status_code, body.get("code"), body.get("message")


def test_create_get_list_update_delete(storage, arm, local_azure, group, location):
    name = unique_account()
    since = local_azure.ops("GET", "requests")["total"]
    account = storage.storage_accounts.begin_create(group, name, account_body(location, tags={"factory": "tests"})).result()
    assert (account.name, account.type, account.location) == (name, ACCOUNT_TYPE, location)
    assert account.provisioning_state == "Succeeded" and account.status_of_primary == "available"
    assert (account.kind, account.sku.name, account.sku.tier, account.access_tier) == (
        "StorageV2", "Standard_LRS", "Standard", "Hot")
    assert account.primary_location == location and account.creation_time is not None
    port = azurite(local_azure)["port"]
    assert account.primary_endpoints.blob == f"http://127.0.0.1:{port}/{name}/"
    # Azure's answer to the PUT: 202 + Location, which answers 200 with the account once provisioned
    calls = [e for e in local_azure.ops("GET", "requests", since=since)["entries"] if name in e["path"]
             or "asyncoperations" in e["path"]]
    assert [(c["method"], c["status"]) for c in calls][:2] == [("PUT", 202), ("GET", 200)]

    assert storage.storage_accounts.get_properties(group, name).id == account.id
    assert [a.name for a in storage.storage_accounts.list_by_resource_group(group)] == [name]
    assert name in {a.name for a in storage.storage_accounts.list()}
    assert name in {r.name for r in arm.resources.resources.list_by_resource_group(group)}

    updated = storage.storage_accounts.update(group, name, {"tags": {"team": "platform"}, "properties": {"accessTier": "Cool"}})
    assert updated.tags == {"team": "platform"} and updated.access_tier == "Cool"
    assert storage.storage_accounts.get_properties(group, name).tags == {"team": "platform"}

    storage.storage_accounts.delete(group, name)
    with pytest.raises(ResourceNotFoundError):
        storage.storage_accounts.get_properties(group, name)
    storage.storage_accounts.delete(group, name)  # gone already: 204, no error
    assert name not in azurite(local_azure)["accounts"]


@pytest.mark.parametrize("name", ["ab", "UpperCase1", "with-hyphen", "a" * 25])
def test_invalid_names_are_refused_before_anything_exists(storage, group, location, name):
    with pytest.raises(HttpResponseError) as err:
        storage.storage_accounts.begin_create(group, name, account_body(location)).result()
    assert error_of(err.value) == (
        400, "AccountNameInvalid",
        f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in "
        "length and use numbers and lower-case letters only.")
    result = storage.storage_accounts.check_name_availability({"name": name, "type": ACCOUNT_TYPE})
    assert (result.name_available, result.reason) == (False, "AccountNameInvalid")


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"sku": None}, "InvalidParameter", "Required parameter 'sku' is missing (null)."),
    ({"sku": {"name": "Gold_LRS"}}, "InvalidValuesForRequestParameters", "Values for request parameters are invalid: sku."),
    ({"kind": "Tape"}, "InvalidValuesForRequestParameters", "Values for request parameters are invalid: kind."),
    ({"properties": {"accessTier": "Frozen"}}, "InvalidValuesForRequestParameters",
     "Values for request parameters are invalid: accessTier."),
    ({"location": "atlantis"}, "LocationNotAvailableForResourceType", "The provided location 'atlantis'"),
])
def test_bad_bodies_are_refused_with_the_field_named(storage, group, location, change, code, message):
    name = unique_account()
    body = {k: v for k, v in {**account_body(location), **change}.items() if v is not None}
    with pytest.raises(HttpResponseError) as err:
        storage.storage_accounts.begin_create(group, name, body).result()
    status, got_code, got_message = error_of(err.value)
    assert (status, got_code) == (400, code) and got_message.startswith(message)
    assert storage.storage_accounts.check_name_availability({"name": name, "type": ACCOUNT_TYPE}).name_available


def test_missing_group_is_refused(storage, location):
    with pytest.raises(ResourceNotFoundError) as err:
        storage.storage_accounts.begin_create(f"nogroup-{uuid.uuid4().hex[:6]}", unique_account(),
                                              account_body(location)).result()
    assert error_of(err.value)[1] == "ResourceGroupNotFound"


def test_names_are_global(storage, arm, new_account, group, location):
    account = new_account()
    check = storage.storage_accounts.check_name_availability({"name": account.name, "type": ACCOUNT_TYPE})
    assert (check.name_available, check.reason, check.message) == (
        False, "AlreadyExists", f"The storage account named {account.name} is already taken.")
    free = storage.storage_accounts.check_name_availability({"name": unique_account(), "type": ACCOUNT_TYPE})
    assert free.name_available is True

    other = f"test-{uuid.uuid4().hex[:10]}"
    arm.resources.resource_groups.create_or_update(other, {"location": location})
    try:
        with pytest.raises(ResourceExistsError) as err:
            storage.storage_accounts.begin_create(other, account.name, account_body(location)).result()
        assert error_of(err.value) == (
            409, "StorageAccountAlreadyTaken", f"The storage account named {account.name} is already taken.")
    finally:
        arm.resources.resource_groups.begin_delete(other).result()

    # the same PUT again in its own group: the same account (same keys), tags replaced
    keys = first_key(storage, group, account.name)
    again = storage.storage_accounts.begin_create(group, account.name, account_body(location, tags={"v": "2"})).result()
    assert again.id == account.id and again.tags == {"v": "2"}
    assert first_key(storage, group, account.name) == keys
    with pytest.raises(ResourceExistsError) as err:
        storage.storage_accounts.begin_create(group, account.name, account_body("eastus")).result()
    assert error_of(err.value)[:2] == (409, "InvalidResourceLocation")


def test_keys_sign_for_azurite_and_regenerating_one_revokes_it(storage, new_account, group):
    account = new_account()
    keys = {k.key_name: k for k in storage.storage_accounts.list_keys(group, account.name).keys_property}
    assert set(keys) == {"key1", "key2"} and keys["key1"].value != keys["key2"].value
    assert all(len(base64.b64decode(k.value)) == 64 and k.permissions.upper() == "FULL" for k in keys.values())
    old1, key2 = keys["key1"].value, keys["key2"].value
    blob_service(account, old1).create_container("signed")

    regenerated = storage.storage_accounts.regenerate_key(group, account.name, {"keyName": "key1"})
    new = {k.key_name: k.value for k in regenerated.keys_property}
    assert new["key1"] != old1 and new["key2"] == key2
    assert first_key(storage, group, account.name) == new["key1"]
    with pytest.raises(HttpResponseError) as err:  # Azurite already refuses the old key
        list(blob_service(account, old1).list_containers())
    assert err.value.status_code == 403
    assert [c.name for c in blob_service(account, new["key1"]).list_containers()] == ["signed"]
    assert [c.name for c in blob_service(account, key2).list_containers()] == ["signed"]

    with pytest.raises(HttpResponseError) as err:
        storage.storage_accounts.regenerate_key(group, account.name, {"keyName": "key3"})
    assert error_of(err.value)[:2] == (400, "InvalidValuesForRequestParameters")


def test_containers_through_arm_are_azurite_containers(storage, new_account, group):
    account = new_account()
    key = first_key(storage, group, account.name)
    containers = storage.blob_containers
    made = containers.create(group, account.name, "vhds", {"properties": {"metadata": {"purpose": "import"}}})
    assert made.name == "vhds" and made.public_access == "None" and made.metadata == {"purpose": "import"}
    assert made.id == f"{account.id}/blobServices/default/containers/vhds"
    data = blob_service(account, key)
    assert [c.name for c in data.list_containers()] == ["vhds"]

    data.create_container("from-data-plane")
    assert sorted(c.name for c in containers.list(group, account.name)) == ["from-data-plane", "vhds"]
    assert containers.get(group, account.name, "from-data-plane").name == "from-data-plane"
    assert containers.create(group, account.name, "vhds", {}).name == "vhds"  # exists: 200, no error

    containers.delete(group, account.name, "vhds")
    assert [c.name for c in data.list_containers()] == ["from-data-plane"]
    with pytest.raises(ResourceNotFoundError) as err:
        containers.get(group, account.name, "vhds")
    assert error_of(err.value)[:2] == (404, "ContainerNotFound")
    with pytest.raises(HttpResponseError) as err:
        containers.create(group, account.name, "No_Such--Name", {})
    assert err.value.status_code == 400
