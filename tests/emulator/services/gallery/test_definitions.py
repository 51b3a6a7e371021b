"""Gallery image definitions through the real SDK: CRUD, naming, immutable fields, parents, deletion."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute.models import GalleryImage, GalleryImageIdentifier, GalleryImageUpdate

from tests.emulator.services.gallery.conftest import definition_body, unique, vhd_version_body

pytestmark = pytest.mark.azure


def test_create_with_sdk_models_get_list_update_delete(arm, group, gallery, location):
    images = arm.compute.gallery_images
    model = GalleryImage(
        location=location, os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
        identifier=GalleryImageIdentifier(publisher="ImageFactory", offer="debian", sku="12-gen2"),
        description="Debian 12 golden image", features=[{"name": "SecurityType", "value": "TrustedLaunch"}],
        recommended={"vCPUs": {"min": 2, "max": 16}, "memory": {"min": 4, "max": 64}},
        tags={"factory": "tests"},
    )
    created = images.begin_create_or_update(group, gallery, "debian-12", model).result()
    assert created.provisioning_state == "Succeeded"
    assert (created.os_type, created.os_state, created.hyper_v_generation) == ("Linux", "Generalized", "V2")
    assert created.identifier.sku == "12-gen2"
    assert created.features[0].name == "SecurityType"
    assert created.recommended.v_cp_us.max == 16
    assert created.architecture == "x64"
    assert [i.name for i in images.list_by_gallery(group, gallery)] == ["debian-12"]

    current = images.get(group, gallery, "debian-12")
    update = GalleryImageUpdate(os_type=current.os_type, os_state=current.os_state, identifier=current.identifier,
                                description="updated", tags={"factory": "tests", "rev": "2"})
    after = images.begin_update(group, gallery, "debian-12", update).result()
    assert after.description == "updated" and after.tags["rev"] == "2"
    assert after.provisioning_state == "Succeeded"

    images.begin_delete(group, gallery, "debian-12").result()
    with pytest.raises(ResourceNotFoundError) as err:
        images.get(group, gallery, "debian-12")
    assert f"Microsoft.Compute/galleries/{gallery}/images/debian-12" in err.value.error.message


def test_hyper_v_generation_defaults_to_v1(arm, group, gallery, location):
    body = definition_body(location)
    del body["properties"]["hyperVGeneration"]
    created = arm.compute.gallery_images.begin_create_or_update(group, gallery, "gen1", body).result()
    assert created.hyper_v_generation == "V1"


@pytest.mark.parametrize("bad", ["-lead", "trail-", "trail.", "_lead", "a" * 81, "bad/name?"])
def test_invalid_definition_names(arm, group, gallery, location, bad):
    with pytest.raises(HttpResponseError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, bad, definition_body(location)).result()
    assert err.value.status_code in (400, 404)  # a '/' or '?' never reaches the service as one name
    if err.value.status_code == 400:
        assert err.value.error.code == "InvalidParameter"
        assert err.value.error.message.startswith(f"The entity name '{bad}' is invalid according to its validation rule")


def test_hyphens_dots_and_underscores_inside_definition_names_are_fine(arm, group, gallery, location):
    name = "ubuntu-22.04_lts"
    arm.compute.gallery_images.begin_create_or_update(group, gallery, name, definition_body(location)).result()
    assert arm.compute.gallery_images.get(group, gallery, name).name == name


@pytest.mark.parametrize(("field", "value"), [
    ("osState", "Specialized"), ("osType", "Windows"), ("hyperVGeneration", "V1"),
])
def test_fixed_fields_cannot_change(arm, group, gallery, location, field, value):
    body = definition_body(location)
    arm.compute.gallery_images.begin_create_or_update(group, gallery, "fixed", body).result()
    body["properties"][field] = value
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "fixed", body).result()
    assert err.value.status_code == 409
    assert err.value.error.code == "PropertyChangeNotAllowed"
    assert err.value.error.message == f"Changing property 'galleryImage.properties.{field}' is not allowed."
    assert err.value.error.target == f"galleryImage.properties.{field}"


def test_identifier_cannot_change(arm, group, gallery, location):
    body = definition_body(location)
    arm.compute.gallery_images.begin_create_or_update(group, gallery, "ident", body).result()
    body["properties"]["identifier"] = {**body["properties"]["identifier"], "offer": "other"}
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "ident", body).result()
    assert err.value.error.message == "Changing property 'galleryImage.properties.identifier.offer' is not allowed."


def test_patch_without_os_type_reads_as_windows(arm, group, gallery, location):
    """Azure's quirk: a PATCH leaving out osType means the enum's first value (Windows)."""
    arm.compute.gallery_images.begin_create_or_update(group, gallery, "quirk", definition_body(location)).result()
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.gallery_images.begin_update(group, gallery, "quirk", {"properties": {"description": "x"}}).result()
    assert err.value.error.message == "Changing property 'galleryImage.properties.osType' is not allowed."
    done = arm.compute.gallery_images.begin_update(
        group, gallery, "quirk", {"properties": {"osType": "Linux", "description": "x"}}).result()
    assert done.description == "x"


def test_identifier_must_be_unique_in_a_gallery(arm, group, gallery, location):
    body = definition_body(location)
    arm.compute.gallery_images.begin_create_or_update(group, gallery, "first", body).result()
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "second", body).result()
    ident = body["properties"]["identifier"]
    assert err.value.error.message == (
        f"Gallery image: first identified by (publisher:{ident['publisher']}, offer:{ident['offer']}, "
        f"sku:{ident['sku']}) already exists. Choose a different publisher, offer, sku combination."
    )


def test_identifier_fields_are_validated(arm, group, gallery, location):
    body = definition_body(location)
    body["properties"]["identifier"]["publisher"] = "ends.with.dot."
    with pytest.raises(HttpResponseError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "idbad", body).result()
    assert err.value.status_code == 400
    assert err.value.error.message.startswith("Asset name galleryImage.properties.identifier.publisher is not valid.")


def test_recommended_min_above_max_is_rejected(arm, group, gallery, location):
    body = definition_body(location, recommended={"vCPUs": {"min": 8, "max": 2}})
    with pytest.raises(HttpResponseError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "rec", body).result()
    assert err.value.error.message == (
        "The minimum value of galleryImage.properties.recommended.vCPUs must not be greater than the maximum value "
        "of galleryImage.properties.recommended.vCPUs."
    )


def test_end_of_life_must_be_in_the_future(arm, group, gallery, location):
    body = definition_body(location, endOfLifeDate="2001-01-01T00:00:00Z")
    with pytest.raises(HttpResponseError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "eol", body).result()
    assert err.value.error.message == "EndOfLifeDate must be set to a future date."
    ok = arm.compute.gallery_images.begin_create_or_update(
        group, gallery, "eol", definition_body(location, endOfLifeDate="2099-12-31T00:00:00Z")).result()
    assert ok.end_of_life_date.year == 2099


def test_missing_os_state_is_required(arm, group, gallery, location):
    body = definition_body(location)
    del body["properties"]["osState"]
    with pytest.raises(HttpResponseError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "nostate", body).result()
    assert err.value.status_code == 400 and "osState" in err.value.error.message


def test_missing_gallery_is_parent_resource_not_found(arm, group, location):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.compute.gallery_images.begin_create_or_update(group, "nogallery", "img", definition_body(location)).result()
    assert err.value.error.code == "ParentResourceNotFound"
    assert err.value.error.message == (
        "Can not perform requested operation on nested resource. Parent resource 'nogallery' not found."
    )
    with pytest.raises(ResourceNotFoundError) as err:
        arm.compute.gallery_images.get(group, "nogallery", "img")
    assert err.value.error.code == "ParentResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        arm.compute.gallery_images.get("no-such-group-def", "nogallery", "img")
    assert err.value.error.code == "ResourceGroupNotFound"


def test_definition_with_versions_cannot_be_deleted(arm, group, gallery, definition, location, vhd_url):
    arm.compute.gallery_image_versions.begin_create_or_update(
        group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url)).result()
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.gallery_images.begin_delete(group, gallery, definition).result()
    assert err.value.error.code == "CannotDeleteResource"
    assert (f"'Microsoft.Compute/galleries/{gallery}/images/{definition}/versions/1.0.0'"
            in err.value.error.message)
    arm.compute.gallery_image_versions.begin_delete(group, gallery, definition, "1.0.0").result()
    arm.compute.gallery_images.begin_delete(group, gallery, definition).result()
    assert list(arm.compute.gallery_images.list_by_gallery(group, gallery)) == []


def test_group_delete_cascades_through_the_gallery(arm, location, vhd_url):
    grp = unique("test-cascade-")
    arm.resources.resource_groups.create_or_update(grp, {"location": location})
    gal = unique("gal")
    arm.compute.galleries.begin_create_or_update(grp, gal, {"location": location}).result()
    arm.compute.gallery_images.begin_create_or_update(grp, gal, "img", definition_body(location)).result()
    arm.compute.gallery_image_versions.begin_create_or_update(
        grp, gal, "img", "1.0.0", vhd_version_body(location, vhd_url)).result()
    arm.resources.resource_groups.begin_delete(grp).result()
    assert not arm.resources.resource_groups.check_existence(grp)
    assert gal not in [g.name for g in arm.compute.galleries.list()]
