"""Gallery image versions through the real SDK (instant durations): sources, rules, updates, deletion."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.emulator.services.gallery.conftest import MIB, definition_body, fixed_vhd, upload, vhd_version_body

V = "galleryImageVersion.properties"


def _create(arm, group, gallery, definition, name, body):  # type: ignore[no-untyped-def]
    return arm.compute.gallery_image_versions.begin_create_or_update(group, gallery, definition, name, body).result()


def _error(call):  # type: ignore[no-untyped-def]
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


@pytest.mark.azure
def test_create_from_vhd_get_expand_list(arm, group, gallery, definition, location, vhd_url):
    versions = arm.compute.gallery_image_versions
    poller = versions.begin_create_or_update(
        group, gallery, definition, "1.0.0",
        vhd_version_body(location, vhd_url, [location, {"name": "eastus", "regionalReplicaCount": 2}],
                         excludeFromLatest=True),
    )
    first = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert first.status_code == 201
    assert "/capsOperations/" in first.headers["Azure-AsyncOperation"]
    assert first.json()["properties"]["provisioningState"] == "Creating"
    created = poller.result()
    assert created.provisioning_state == "Succeeded"
    profile = created.publishing_profile
    assert [(t.name, t.regional_replica_count, t.storage_account_type) for t in profile.target_regions] == [
        ("West Europe", 1, "Standard_LRS"), ("East US", 2, "Standard_LRS")]
    assert profile.replica_count == 1 and profile.exclude_from_latest is True
    assert profile.storage_account_type == "Standard_LRS" and profile.published_date is not None
    assert created.storage_profile.os_disk_image.source.uri == vhd_url
    assert created.storage_profile.os_disk_image.size_in_gb == 1
    assert created.replication_status is None  # only with $expand

    expanded = versions.get(group, gallery, definition, "1.0.0", expand="ReplicationStatus")
    status = expanded.replication_status
    assert status.aggregated_state == "Completed"
    assert [(s.region, s.state, s.progress, s.details) for s in status.summary] == [
        ("West Europe", "Completed", 100, ""), ("East US", "Completed", 100, "")]
    assert [v.name for v in versions.list_by_gallery_image(group, gallery, definition)] == ["1.0.0"]


@pytest.mark.azure
def test_target_regions_default_to_the_version_location(arm, group, gallery, definition, location, vhd_url):
    created = _create(arm, group, gallery, definition, "1.0.1", vhd_version_body(location, vhd_url))
    assert [t.name for t in created.publishing_profile.target_regions] == ["West Europe"]


@pytest.mark.azure
@pytest.mark.parametrize("bad", ["1.0", "1.0.0.0", "v1.0.0", "1.0.2147483648", "1.-1.0", "latest"])
def test_version_name_must_be_major_minor_patch(arm, group, gallery, definition, location, vhd_url, bad):
    err = _error(lambda: _create(arm, group, gallery, definition, bad, vhd_version_body(location, vhd_url)))
    assert err.status_code == 400 and err.error.code == "InvalidParameter"
    assert err.error.target == "galleryImageVersionName"
    assert err.error.message == (
        "The image version name is invalid. The image version name should follow Major(int).Minor(int).Patch(int) "
        "format, for e.g: 1.0.0, 2018.12.1 etc."
    )


@pytest.mark.azure
def test_target_regions_must_contain_the_version_location(arm, group, gallery, definition, location, vhd_url):
    err = _error(lambda: _create(arm, group, gallery, definition, "1.0.0",
                                 vhd_version_body(location, vhd_url, ["eastus", "westus"])))
    assert err.status_code == 400
    assert err.error.message == (
        "Gallery image version publishing profile regions 'eastus,westus' must contain the location of image "
        f"version '{location}'."
    )


@pytest.mark.parametrize(("regions", "publishing", "code", "fragment"), [
    (["westeurope", "atlantis"], {}, "LocationNotAvailableForResourceType", "'atlantis' is not available"),
    (["westeurope", "West Europe"], {}, "InvalidParameter", "Duplicate regions are not allowed"),
    ([{"name": "westeurope", "regionalReplicaCount": 0}], {}, "InvalidParameter",
     "The value 0 of parameter 'galleryImageVersion.properties.publishingProfile.targetRegions.regionalReplicaCount' "
     "is out of range. The value must be between 1 and 100, inclusive."),
    (None, {"replicaCount": 101}, "InvalidParameter", "The value must be between 1 and 100"),
    (None, {"storageAccountType": "Ultra_LRS"}, "InvalidParameter", "storageAccountType' is invalid"),
    (None, {"endOfLifeDate": "2001-01-01T00:00:00Z"}, "InvalidParameter", "EndOfLifeDate must be set to a future date."),
])
def test_publishing_profile_rules(arm, group, gallery, definition, location, vhd_url, regions, publishing, code,
                                  fragment):
    err = _error(lambda: _create(arm, group, gallery, definition, "1.0.0",
                                 vhd_version_body(location, vhd_url, regions, **publishing)))
    assert err.status_code == 400 and err.error.code == code
    assert fragment in err.error.message


def test_vhd_sources_are_validated(arm, group, gallery, definition, location, local_azure, tmp_path):
    def attempt(url, **source):  # type: ignore[no-untyped-def]
        body = vhd_version_body(location, url)
        body["properties"]["storageProfile"]["osDiskImage"]["source"].update(source)
        return _error(lambda: _create(arm, group, gallery, definition, "9.9.9", body))

    target = f"{V}.storageProfile.osDiskImage.source.uri"
    missing = "https://factoryvhds.blob.core.windows.net/vhds/never-uploaded.vhd"
    err = attempt(missing)
    assert err.status_code == 400 and err.error.target == target
    assert err.error.message == f"Source was not found: {missing}. Please make sure the source exists."

    raw = tmp_path / "raw.img"
    raw.write_bytes(b"\0" * (MIB + 512))
    url = upload(local_azure, raw)
    assert attempt(url).error.message == (
        f"The specified cookie value in VHD footer indicates that disk 'raw.img' with blob {url} is not a supported "
        "VHD. Disk is expected to have cookie value 'conectix'."
    )

    from emulator.storage import vhd

    dynamic = tmp_path / "dynamic.vhd"
    dynamic.write_bytes(b"\0" * MIB + vhd.make_footer(MIB, disk_type=3))
    err = attempt(upload(local_azure, dynamic))
    assert err.error.code == "InvalidParameter" and "Dynamic" in err.error.message and "fixed VHD" in err.error.message

    odd = tmp_path / "odd.vhd"
    odd.write_bytes(b"\0" * (MIB + 512) + vhd.make_footer(MIB + 512))
    assert "The size must be a whole number (in MBs)." in attempt(upload(local_azure, odd)).error.message

    good = upload(local_azure, fixed_vhd(tmp_path))
    assert "is not a valid blob URI" in attempt("https://example.com/vhds/disk.vhd").error.message
    err = attempt(good, storageAccountId=f"/subscriptions/{arm.subscription_id}/resourceGroups/{group}/providers/"
                                         "Microsoft.Storage/storageAccounts/otheraccount")
    assert err.error.target == f"{V}.storageProfile.osDiskImage.source.storageAccountId"


def test_source_must_be_given_once_and_be_a_known_kind(arm, group, gallery, definition, location):
    body = {"location": location, "properties": {"storageProfile": {}}}
    err = _error(lambda: _create(arm, group, gallery, definition, "1.0.0", body))
    assert err.error.message.startswith("The gallery artifact version source can only be specified either directly")
    body["properties"]["storageProfile"] = {"source": {"id": "not-an-id"}}
    err = _error(lambda: _create(arm, group, gallery, definition, "1.0.0", body))
    assert err.error.message.startswith("Property id 'not-an-id' at path 'properties.storageProfile.source.id' is invalid.")
    vnet = f"/subscriptions/{arm.subscription_id}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/v"
    body["properties"]["storageProfile"] = {"source": {"id": vnet}}
    err = _error(lambda: _create(arm, group, gallery, definition, "1.0.0", body))
    assert err.error.message == (
        f"The source id: {vnet} must either be a managed image, virtual machine or another gallery image version")


@pytest.mark.azure
def test_missing_definition_is_parent_resource_not_found(arm, group, gallery, location, vhd_url):
    with pytest.raises(ResourceNotFoundError) as err:
        _create(arm, group, gallery, "nodef", "1.0.0", vhd_version_body(location, vhd_url))
    assert err.value.error.code == "ParentResourceNotFound"
    assert err.value.error.message == (
        f"Can not perform requested operation on nested resource. Parent resource '{gallery}/nodef' not found.")


@pytest.mark.azure
def test_put_cannot_change_the_source(arm, group, gallery, definition, location, vhd_url, new_vhd):
    _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url))
    with pytest.raises(ResourceExistsError) as err:
        _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, new_vhd()))
    path = f"{V}.storageProfile.osDiskImage.source.uri"
    assert err.value.error.code == "PropertyChangeNotAllowed"
    assert err.value.error.message == f"Changing property '{path}' is not allowed."
    again = _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url))  # idempotent retry
    assert again.provisioning_state == "Succeeded"


@pytest.mark.azure
def test_patch_cannot_touch_the_storage_profile(arm, group, gallery, definition, location, vhd_url, new_vhd):
    _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url))
    patch = {"properties": {"storageProfile": {"osDiskImage": {"source": {"uri": new_vhd()}}}}}
    err = _error(lambda: arm.compute.gallery_image_versions.begin_update(
        group, gallery, definition, "1.0.0", patch).result())
    assert err.status_code == 400 and err.error.code == "InvalidParameter"
    assert err.error.message == f"Parameter '{V}.storageProfile' is not allowed."


@pytest.mark.azure
def test_storage_account_type_is_not_updatable(arm, group, gallery, definition, location, vhd_url):
    _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url))
    patch = {"properties": {"publishingProfile": {"storageAccountType": "Premium_LRS"}}}
    with pytest.raises(ResourceExistsError) as err:
        arm.compute.gallery_image_versions.begin_update(group, gallery, definition, "1.0.0", patch).result()
    assert err.value.error.message == (
        f"Changing property '{V}.publishingProfile.storageAccountType' is not allowed.")


def test_patch_adds_and_removes_regions(arm, group, gallery, definition, location, vhd_url, local_azure):
    versions = arm.compute.gallery_image_versions
    _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url))
    poller = versions.begin_update(group, gallery, definition, "1.0.0", {"properties": {"publishingProfile": {
        "targetRegions": [{"name": location}, {"name": "eastus"}, {"name": "japaneast"}]}}})
    first = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert first.status_code == 200 and "Azure-AsyncOperation" in first.headers
    assert first.json()["properties"]["provisioningState"] == "Updating"
    after = poller.result()
    assert after.provisioning_state == "Succeeded"
    assert [t.name for t in after.publishing_profile.target_regions] == ["West Europe", "East US", "Japan East"]
    replica = list((local_azure.state_dir / "regions" / "japaneast").rglob("*.vhd"))
    assert len(replica) == 1

    drop = {"properties": {"publishingProfile": {"targetRegions": [{"name": location}, {"name": "eastus"}]}}}
    with pytest.raises(ResourceExistsError) as err:
        versions.begin_update(group, gallery, definition, "1.0.0", drop).result()
    assert err.value.error.code == "OperationNotAllowed" and "japaneast" in err.value.error.message
    drop["properties"]["safetyProfile"] = {"allowDeletionOfReplicatedLocations": True}
    after = versions.begin_update(group, gallery, definition, "1.0.0", drop).result()
    assert [t.name for t in after.publishing_profile.target_regions] == ["West Europe", "East US"]
    assert after.safety_profile.allow_deletion_of_replicated_locations is True
    assert not replica[0].exists()
    with pytest.raises(HttpResponseError) as err:  # the source region can never go
        versions.begin_update(group, gallery, definition, "1.0.0", {"properties": {"publishingProfile": {
            "targetRegions": [{"name": "eastus"}]}}}).result()
    assert "must contain the location of image version" in err.value.error.message


def test_delete_releases_every_replica_and_the_master(arm, group, gallery, definition, location, vhd_url,
                                                       local_azure):
    versions = arm.compute.gallery_image_versions
    created = _create(arm, group, gallery, definition, "2.0.0",
                      vhd_version_body(location, vhd_url, [location, "eastus"]))
    slug = f"{gallery}-{definition}-2.0.0".lower()
    held = [p for p in local_azure.state_dir.rglob("*.vhd") if slug in str(p)]
    assert len(held) == 3  # master + 2 regions, each its own file
    blob = local_azure.state_dir / "blobs" / "factoryvhds" / "vhds" / vhd_url.rsplit("/", 1)[1]
    assert all(p.stat().st_ino == blob.stat().st_ino or p.read_bytes() == blob.read_bytes() for p in held)
    poller = versions.begin_delete(group, gallery, definition, created.name)
    first = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert first.status_code == 202 and "Location" in first.headers and "Azure-AsyncOperation" in first.headers
    poller.result()
    assert not any(p.exists() for p in held)
    assert blob.exists()  # the uploaded source is the user's: untouched
    with pytest.raises(ResourceNotFoundError):
        versions.get(group, gallery, definition, created.name)


def test_group_delete_releases_replicas(arm, location, local_azure, vhd_url):
    from tests.emulator.services.gallery.conftest import unique

    grp = unique("test-release-")
    arm.resources.resource_groups.create_or_update(grp, {"location": location})
    gal = unique("gal")
    arm.compute.galleries.begin_create_or_update(grp, gal, {"location": location}).result()
    arm.compute.gallery_images.begin_create_or_update(grp, gal, "img", definition_body(location)).result()
    _create(arm, grp, gal, "img", "1.0.0", vhd_version_body(location, vhd_url, [location, "eastus"]))
    held = [p for p in local_azure.state_dir.rglob("*.vhd") if gal.lower() in str(p)]
    assert len(held) == 3
    arm.resources.resource_groups.begin_delete(grp).result()
    assert not any(p.exists() for p in held)


def test_injected_lro_failure_fails_the_version_until_retried(arm, group, gallery, definition, location, vhd_url,
                                                              faults):
    faults.add_fault(match="Microsoft.Compute/galleries/images/versions/write", kind="lro_failure",
                     code="InternalOperationError", message="Replication service unavailable.", count=1)
    body = vhd_version_body(location, vhd_url, [location, "eastus"])
    err = _error(lambda: _create(arm, group, gallery, definition, "3.0.0", body))
    assert err.error.code == "InternalOperationError"
    failed = arm.compute.gallery_image_versions.get(group, gallery, definition, "3.0.0", expand="ReplicationStatus")
    assert failed.provisioning_state == "Failed"
    assert failed.replication_status.aggregated_state == "Failed"
    assert {s.state for s in failed.replication_status.summary} == {"Failed"}
    assert failed.replication_status.summary[0].details == "Replication service unavailable."
    fixed = _create(arm, group, gallery, definition, "3.0.0", body)  # a retry re-replicates the failed regions
    assert fixed.provisioning_state == "Succeeded"


def test_region_fault_fails_only_that_region(arm, group, gallery, definition, location, vhd_url, replication_faults):
    rule = replication_faults.ops("POST", "replication/faults", {"region": "eastus", "count": 1})
    assert rule["code"] == "ReplicationFailed"
    body = vhd_version_body(location, vhd_url, [location, "eastus", "westus"])
    err = _error(lambda: _create(arm, group, gallery, definition, "4.0.0", body))
    assert err.error.code == "ReplicationFailed" and "eastus" in err.error.message
    got = arm.compute.gallery_image_versions.get(group, gallery, definition, "4.0.0", expand="ReplicationStatus")
    assert got.provisioning_state == "Failed"
    states = {s.region: (s.state, s.details) for s in got.replication_status.summary}
    assert states["West Europe"] == ("Completed", "") and states["West US"] == ("Completed", "")
    assert states["East US"] == ("Failed", "Replication failed in this region due to 'Injected replication fault.'")
    assert got.replication_status.aggregated_state == "Failed"
    assert replication_faults.ops("GET", "replication/faults")["value"] == []  # count 1: used up
    assert _create(arm, group, gallery, definition, "4.0.0", body).provisioning_state == "Succeeded"


def test_version_from_another_version(arm, group, gallery, definition, location, vhd_url):
    first = _create(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url))
    body = {"location": location, "properties": {"storageProfile": {"source": {"id": first.id}}}}
    second = _create(arm, group, gallery, definition, "1.0.1", body)
    assert second.provisioning_state == "Succeeded"
    assert second.storage_profile.source.id == first.id
    assert second.storage_profile.os_disk_image.size_in_gb == 1
    body["properties"]["storageProfile"] = {"source": {"id": first.id.replace("1.0.0", "7.7.7")}}
    err = _error(lambda: _create(arm, group, gallery, definition, "1.0.2", body))
    assert err.status_code == 404 and err.error.message.startswith(f"Source {first.id.replace('1.0.0', '7.7.7')} is not found.")


def test_definition_os_facts_must_match_the_source(arm, group, gallery, location, vhd_url):
    """A VHD inherits its definition's facts; another version as source must agree with the new definition."""
    images = arm.compute.gallery_images
    images.begin_create_or_update(group, gallery, "gen2", definition_body(location)).result()
    images.begin_create_or_update(group, gallery, "gen1", definition_body(location, generation="V1")).result()
    images.begin_create_or_update(group, gallery, "spec", definition_body(location, os_state="Specialized")).result()
    images.begin_create_or_update(group, gallery, "win", definition_body(location, os_type="Windows")).result()
    src = _create(arm, group, gallery, "gen2", "1.0.0", vhd_version_body(location, vhd_url))
    body = {"location": location, "properties": {"storageProfile": {"source": {"id": src.id}}}}
    err = _error(lambda: _create(arm, group, gallery, "spec", "1.0.0", body))
    assert err.status_code == 400 and err.error.code == "BadRequest"
    assert err.error.message == (f"The resource with id '{src.id}' has a different OS state ['Generalized'] than the "
                                 "parent gallery image OS state ['Specialized'].")
    err = _error(lambda: _create(arm, group, gallery, "gen1", "1.0.0", body))
    assert err.status_code == 409 and err.error.code == "Conflict"
    assert err.error.message == (f"The resource with id '{src.id}' has a different Hypervisor generation ['V2'] than "
                                 "the parent gallery image Hypervisor generation ['V1'].")
    err = _error(lambda: _create(arm, group, gallery, "win", "1.0.0", body))
    assert err.status_code == 409 and "different OS type ['Linux']" in err.error.message
