"""Versions captured from VMs and managed images (the compute service's capture_source / image_source),
and VMs booted from the versions: the golden-image path end to end through the real SDK."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.emulator.services.compute.conftest import DEBIAN, DEBIAN_GEN2, Kit
from tests.emulator.services.gallery.conftest import definition_body

pytestmark = [pytest.mark.azure, pytest.mark.guests("simulated")]


@pytest.fixture
def kit(arm, group, location, ssh_public_key) -> Kit:  # type: ignore[no-untyped-def]
    return Kit(arm, group, location, ssh_public_key)


@pytest.fixture(scope="session")
def ssh_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _stopped_vm(kit: Kit, name: str, *, image: dict[str, Any], generalize: bool) -> Any:
    vm = kit.linux_vm(name, image=dict(image))
    kit.compute.virtual_machines.begin_deallocate(kit.group, name).result()
    if generalize:
        kit.compute.virtual_machines.generalize(kit.group, name)
    return vm


def _version_from(kit: Kit, gallery: str, definition: str, name: str, source: dict[str, Any],
                  regions: list[str] | None = None, location: str | None = None) -> Any:
    loc = location or kit.location
    body: dict[str, Any] = {"location": loc, "properties": {"storageProfile": {"source": source}}}
    if regions:
        body["properties"]["publishingProfile"] = {"targetRegions": [{"name": r} for r in regions]}
    return kit.compute.gallery_image_versions.begin_create_or_update(kit.group, gallery, definition, name, body).result()


def test_version_from_a_generalized_vm_and_vms_from_the_version(kit, gallery, inproc):
    kit.compute.gallery_images.begin_create_or_update(kit.group, gallery, "deb12", definition_body(kit.location)).result()
    vm = _stopped_vm(kit, "build", image=DEBIAN_GEN2, generalize=True)
    version = _version_from(kit, gallery, "deb12", "1.0.0", {"id": vm.id}, [kit.location, "eastus"])
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.source.id.lower() == vm.id.lower()
    assert version.storage_profile.os_disk_image.size_in_gb == 30

    from emulator.services.gallery.models import image_source

    found = image_source(inproc, version.id, "eastus")
    assert found["disk"]["kind"] == "simulated" and found["os_state"] == "Generalized"

    # a VM from the exact version in a replicated region, and one from the definition (latest)
    east = kit.linux_body(kit.nic(location="eastus"), image={"id": version.id}, location="eastus",
                          computer_name="smoke-east")
    assert kit.create("smoke-east", east).provisioning_state == "Succeeded"
    def_id = kit.compute.gallery_images.get(kit.group, gallery, "deb12").id
    here = kit.linux_body(kit.nic(), image={"id": def_id}, computer_name="smoke-latest")
    assert kit.create("smoke-latest", here).provisioning_state == "Succeeded"
    # not in a region the version was not replicated to
    far = kit.linux_body(kit.nic(location="japaneast"), image={"id": version.id}, location="japaneast")
    with pytest.raises(ResourceNotFoundError) as err:
        kit.create("smoke-far", far)
    assert err.value.error.code == "GalleryImageNotFound"
    assert err.value.error.message == (
        f"The gallery image {version.id} is not available in japaneast region. Please contact image owner to "
        "replicate to this region, or change your requested region.")


def test_virtual_machine_id_field_and_specialized_definitions(kit, gallery):
    kit.compute.gallery_images.begin_create_or_update(
        kit.group, gallery, "special", definition_body(kit.location, os_state="Specialized")).result()
    vm = _stopped_vm(kit, "spec", image=DEBIAN_GEN2, generalize=False)
    version = _version_from(kit, gallery, "special", "1.0.0", {"virtualMachineId": vm.id})
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.source.virtual_machine_id.lower() == vm.id.lower()


def test_os_state_and_generation_must_match_the_definition(kit, gallery):
    kit.compute.gallery_images.begin_create_or_update(kit.group, gallery, "gen2", definition_body(kit.location)).result()
    specialized = _stopped_vm(kit, "notgen", image=DEBIAN_GEN2, generalize=False)
    with pytest.raises(HttpResponseError) as err:
        _version_from(kit, gallery, "gen2", "1.0.0", {"id": specialized.id})
    assert err.value.status_code == 400 and err.value.error.code == "BadRequest"
    assert err.value.error.message == (
        f"The resource with id '{specialized.id}' has a different OS state ['Specialized'] than the parent gallery "
        "image OS state ['Generalized'].")

    gen1 = _stopped_vm(kit, "gen1vm", image=DEBIAN, generalize=True)
    with pytest.raises(ResourceExistsError) as err:
        _version_from(kit, gallery, "gen2", "1.0.0", {"id": gen1.id})
    assert err.value.status_code == 409 and err.value.error.code == "Conflict"
    assert err.value.error.message == (
        f"The resource with id '{gen1.id}' has a different Hypervisor generation ['V1'] than the parent gallery "
        "image Hypervisor generation ['V2'].")
    assert list(kit.compute.gallery_image_versions.list_by_gallery_image(kit.group, gallery, "gen2")) == []


def test_missing_running_or_far_away_vms(kit, gallery):
    kit.compute.gallery_images.begin_create_or_update(kit.group, gallery, "img", definition_body(kit.location)).result()
    missing = f"/subscriptions/{kit.arm.subscription_id}/resourceGroups/{kit.group}/providers/Microsoft.Compute/" \
              "virtualMachines/ghost"
    with pytest.raises(ResourceNotFoundError) as err:
        _version_from(kit, gallery, "img", "1.0.0", {"id": missing})
    assert err.value.error.message == (
        f"Source {missing} is not found. Please check source exists, and is in the same region as gallery image "
        "version being created.")

    running = kit.linux_vm("running", image=dict(DEBIAN_GEN2))
    with pytest.raises(ResourceExistsError) as err:
        _version_from(kit, gallery, "img", "1.0.0", {"id": running.id})
    assert err.value.error.code == "OperationNotAllowed"

    kit.compute.virtual_machines.begin_deallocate(kit.group, "running").result()
    kit.compute.virtual_machines.generalize(kit.group, "running")
    with pytest.raises(ResourceNotFoundError) as err:  # the version must be made in the VM's region
        _version_from(kit, gallery, "img", "1.0.0", {"id": running.id}, ["eastus"], location="eastus")
    assert err.value.error.message.startswith(f"Source {running.id} is not found.")


def test_version_from_a_managed_image(kit, gallery):
    kit.compute.gallery_images.begin_create_or_update(
        kit.group, gallery, "fromimage", definition_body(kit.location, generation="V1")).result()
    vm = _stopped_vm(kit, "imgsrc", image=DEBIAN, generalize=True)
    image = kit.compute.images.begin_create_or_update(kit.group, "golden", {
        "location": kit.location, "properties": {"sourceVirtualMachine": {"id": vm.id}, "hyperVGeneration": "V1"}},
    ).result()
    version = _version_from(kit, gallery, "fromimage", "1.0.0", {"id": image.id}, [kit.location, "northeurope"])
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.source.id.lower() == image.id.lower()
    # the version keeps its own copy: deleting the image does not break VMs from the version
    kit.compute.images.begin_delete(kit.group, "golden").result()
    body = kit.linux_body(kit.nic(location="northeurope"), image={"id": version.id}, location="northeurope")
    assert kit.create("fromversion", body).provisioning_state == "Succeeded"
