"""Galleries through the real azure-mgmt-compute SDK: CRUD, listing, naming and deletion rules."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.emulator.services.gallery.conftest import definition_body, unique

pytestmark = pytest.mark.azure


def test_create_get_update_list_delete(arm, group, location):
    galleries = arm.compute.galleries
    name = unique("gal")
    created = galleries.begin_create_or_update(
        group, name, {"location": location, "tags": {"factory": "tests"}, "properties": {"description": "first"}}
    ).result()
    assert created.name == name and created.location == location
    assert created.provisioning_state == "Succeeded"
    assert created.description == "first"
    assert created.identifier.unique_name.endswith(name.upper())

    updated = galleries.begin_update(group, name, {"tags": {"factory": "tests", "run": "2"},
                                                   "properties": {"description": "second"}}).result()
    assert updated.tags == {"factory": "tests", "run": "2"} and updated.description == "second"
    assert galleries.get(group, name).provisioning_state == "Succeeded"

    assert name in [g.name for g in galleries.list_by_resource_group(group)]
    assert name in [g.name for g in galleries.list()]  # az sig list: subscription-wide

    galleries.begin_delete(group, name).result()
    with pytest.raises(ResourceNotFoundError) as err:
        galleries.get(group, name)
    assert err.value.error.code == "ResourceNotFound"
    assert f"Microsoft.Compute/galleries/{name}" in err.value.error.message


def test_put_on_existing_gallery_updates_it(arm, group, location):
    name = unique("gal")
    arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result()
    again = arm.compute.galleries.begin_create_or_update(
        group, name, {"location": location, "tags": {"k": "v"}}).result()
    assert again.tags == {"k": "v"} and again.provisioning_state == "Succeeded"


@pytest.mark.parametrize("bad", ["has-hyphen", "_leading", "trailing.", "a" * 81, "sp ace"])
def test_invalid_gallery_names_are_rejected(arm, group, location, bad):
    with pytest.raises(HttpResponseError) as err:
        arm.compute.galleries.begin_create_or_update(group, bad, {"location": location}).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidParameter"
    assert err.value.error.message.startswith("Gallery name is invalid. Allowed characters are English alphanumeric")


@pytest.mark.parametrize("good", ["a", "Gallery_1.prod", "x" * 80])
def test_valid_gallery_names_are_accepted(arm, group, location, good):
    name = good if len(good) > 1 else unique("g")
    arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result()
    assert arm.compute.galleries.get(group, name).name == name
    arm.compute.galleries.begin_delete(group, name).result()


def test_missing_group_and_unknown_location(arm, location):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.compute.galleries.begin_create_or_update("no-such-group-gal", "gal1", {"location": location}).result()
    assert err.value.error.code == "ResourceGroupNotFound"
    assert err.value.error.message == "Resource group 'no-such-group-gal' could not be found."


def test_unknown_location(arm, group):
    with pytest.raises(HttpResponseError) as err:
        arm.compute.galleries.begin_create_or_update(group, unique("gal"), {"location": "atlantis"}).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "LocationNotAvailableForResourceType"
    assert "'Microsoft.Compute/galleries'" in err.value.error.message


def test_same_name_in_another_location_is_a_conflict(arm, group, location):
    name = unique("gal")
    arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result()
    with pytest.raises(HttpResponseError) as err:
        arm.compute.galleries.begin_create_or_update(group, name, {"location": "eastus"}).result()
    assert err.value.status_code == 409
    assert err.value.error.code == "InvalidResourceLocation"
    assert f"already exists in location '{location}'" in err.value.error.message


def test_gallery_with_definitions_cannot_be_deleted(arm, group, location):
    name = unique("gal")
    arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result()
    arm.compute.gallery_images.begin_create_or_update(group, name, "img1", definition_body(location)).result()
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.galleries.begin_delete(group, name).result()
    assert err.value.status_code == 409
    assert err.value.error.code == "CannotDeleteResource"
    assert err.value.error.message == (
        "Cannot delete resource while nested resources exist. Some existing nested resource IDs include: "
        f"'Microsoft.Compute/galleries/{name}/images/img1'. Please delete all nested resources before deleting "
        "this resource."
    )
    arm.compute.gallery_images.begin_delete(group, name, "img1").result()
    arm.compute.galleries.begin_delete(group, name).result()
    assert name not in [g.name for g in arm.compute.galleries.list_by_resource_group(group)]


def test_deleting_a_missing_gallery_is_a_no_op(arm, group):
    arm.compute.galleries.begin_delete(group, "nothinghere").result()


def test_put_is_an_lro_answered_with_azure_async_operation(arm, group, location, local_azure):
    name = unique("gal")
    poller = arm.compute.galleries.begin_create_or_update(group, name, {"location": location})
    first = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert first.status_code == 201
    assert "/capsOperations/" in first.headers["Azure-AsyncOperation"]
    assert first.json()["properties"]["provisioningState"] == "Creating"
    assert poller.result().provisioning_state == "Succeeded"
    delete = arm.compute.galleries.begin_delete(group, name)
    answer = delete.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert answer.status_code == 202 and "Location" in answer.headers and "Azure-AsyncOperation" in answer.headers
    delete.result()


def test_injected_lro_failure_fails_the_create(arm, group, location, faults):
    name = unique("gal")
    faults.add_fault(match="Microsoft.Compute/galleries/write", kind="lro_failure", code="InternalError",
                     message="Gallery creation failed.", count=1)
    with pytest.raises(HttpResponseError) as err:
        arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result()
    assert err.value.error.code == "InternalError"
    assert arm.compute.galleries.get(group, name).provisioning_state == "Failed"
    # a retry repairs it, as in Azure
    assert arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result() \
        .provisioning_state == "Succeeded"
