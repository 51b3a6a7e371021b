"""VMs from Azure Compute Gallery images: a version, a definition's latest, specialized images, regions."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.emulator.services.compute.conftest import Kit, error_of

pytestmark = [pytest.mark.azure, pytest.mark.guests("simulated")]


def _definition(kit: Kit, name: str, os_state: str, hyper_v: str = "V1") -> Any:
    kit.compute.galleries.begin_create_or_update(kit.group, "factorygallery", {"location": kit.location}).result()
    body = {"location": kit.location, "properties": {
        "osType": "Linux", "osState": os_state, "hyperVGeneration": hyper_v,
        "identifier": {"publisher": "factory", "offer": name, "sku": "1"}}}
    return kit.compute.gallery_images.begin_create_or_update(kit.group, "factorygallery", name, body).result()


def _version(kit: Kit, definition: str, version: str, vm_id: str, *, exclude: bool = False) -> Any:
    body = {"location": kit.location, "properties": {
        "publishingProfile": {"targetRegions": [{"name": kit.location}], "excludeFromLatest": exclude},
        "storageProfile": {"source": {"virtualMachineId": vm_id}}}}
    return kit.compute.gallery_image_versions.begin_create_or_update(
        kit.group, "factorygallery", definition, version, body).result()


def test_vm_from_a_generalized_version_and_from_the_definitions_latest(kit: Kit):
    source = kit.linux_vm("gsrc")
    kit.compute.virtual_machines.begin_deallocate(kit.group, "gsrc").result()
    kit.compute.virtual_machines.generalize(kit.group, "gsrc")
    definition = _definition(kit, "debian-golden", "Generalized")
    v1 = _version(kit, "debian-golden", "1.0.0", source.id)
    _version(kit, "debian-golden", "1.0.1", source.id, exclude=True)  # not a candidate for latest

    vm = kit.create("gvm", kit.linux_body(kit.nic(), image={"id": v1.id}, computer_name="fromversion"))
    assert vm.provisioning_state == "Succeeded"
    assert vm.storage_profile.image_reference.id.lower() == v1.id.lower()
    assert vm.storage_profile.image_reference.exact_version == "1.0.0"
    assert kit.statuses("gvm") == ["ProvisioningState/succeeded", "PowerState/running"]

    latest = kit.create("glatest", kit.linux_body(kit.nic(), image={"id": definition.id}))
    assert latest.storage_profile.image_reference.exact_version == "1.0.0"

    with pytest.raises(HttpResponseError) as err:
        kit.create("gnoprofile", kit.linux_body(kit.nic(), image={"id": v1.id}, os_profile=None))
    assert error_of(err.value) == (
        400, "InvalidParameter", "Required parameter 'osProfile' is missing (null).", "osProfile")

    far = kit.linux_body(kit.nic(location="eastus"), image={"id": v1.id}, location="eastus")
    with pytest.raises(ResourceNotFoundError) as err:
        kit.create("gfar", far)
    assert err.value.error.code == "GalleryImageNotFound"
    assert "is not available in eastus region" in err.value.error.message


def test_vm_from_a_specialized_version_keeps_its_identity(kit: Kit):
    source = kit.linux_vm("ssrc", computer_name="original")
    kit.compute.virtual_machines.begin_power_off(kit.group, "ssrc").result()
    _definition(kit, "debian-special", "Specialized")
    version = _version(kit, "debian-special", "1.0.0", source.id)

    with pytest.raises(HttpResponseError) as err:
        kit.create("sbad", kit.linux_body(kit.nic(), image={"id": version.id}))
    assert error_of(err.value)[:3] == (400, "InvalidParameter", "Parameter 'osProfile' is not allowed.")

    vm = kit.create("sclone", kit.linux_body(kit.nic(), image={"id": version.id}, os_profile=None))
    assert vm.os_profile is None
    assert kit.statuses("sclone") == ["ProvisioningState/succeeded", "PowerState/running"]
