"""Managed images: captured from a generalized VM, used to build VMs in their region, deleted."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.emulator.services.compute.conftest import Kit, error_of

pytestmark = [pytest.mark.azure, pytest.mark.guests("simulated")]


def _generalized(kit: Kit, name: str):
    vm = kit.linux_vm(name)
    kit.compute.virtual_machines.begin_deallocate(kit.group, name).result()
    kit.compute.virtual_machines.generalize(kit.group, name)
    return vm


def _image_body(kit: Kit, vm_id: str, location: str | None = None, **props):
    return {"location": location or kit.location, "tags": {"factory": "tests"},
            "properties": {"sourceVirtualMachine": {"id": vm_id}, **props}}


def test_only_a_generalized_vm_can_be_captured(kit: Kit):
    vm = kit.linux_vm("special")
    kit.compute.virtual_machines.begin_deallocate(kit.group, "special").result()
    with pytest.raises(ResourceExistsError) as err:
        kit.compute.images.begin_create_or_update(kit.group, "img", _image_body(kit, vm.id)).result()
    assert error_of(err.value) == (
        409, "OperationNotAllowed", "The operation 'Create Image' requires the Virtual Machine 'special' to be Generalized.",
        None)


def test_image_from_a_generalized_vm_and_a_vm_from_the_image(kit: Kit):
    vm = _generalized(kit, "source")
    images = kit.compute.images
    image = images.begin_create_or_update(kit.group, "golden", _image_body(kit, vm.id, hyperVGeneration="V1")).result()
    assert image.provisioning_state == "Succeeded"
    assert image.source_virtual_machine.id.lower() == vm.id.lower()
    assert image.hyper_v_generation == "V1" and image.tags == {"factory": "tests"}
    os_disk = image.storage_profile.os_disk
    assert (os_disk.os_type, os_disk.os_state, os_disk.disk_size_gb) == ("Linux", "Generalized", 30)
    assert images.get(kit.group, "golden").id == image.id
    assert [i.name for i in images.list_by_resource_group(kit.group)] == ["golden"]
    assert image.id in {i.id for i in images.list()}

    from_image = kit.create("fromimage", kit.linux_body(kit.nic(), image={"id": image.id}, computer_name="clone"))
    assert from_image.provisioning_state == "Succeeded"
    assert from_image.storage_profile.image_reference.id.lower() == image.id.lower()
    assert kit.statuses("fromimage") == ["ProvisioningState/succeeded", "PowerState/running"]
    assert kit.compute.virtual_machines.instance_view(kit.group, "fromimage").computer_name == "clone"

    with pytest.raises(HttpResponseError) as err:
        kit.create("noprofile", kit.linux_body(kit.nic(), image={"id": image.id}, os_profile=None))
    assert error_of(err.value) == (
        400, "InvalidParameter", "Required parameter 'osProfile' is missing (null).", "osProfile")

    far = kit.linux_body(kit.nic(location="eastus"), image={"id": image.id}, location="eastus")
    with pytest.raises(ResourceNotFoundError) as err:
        kit.create("faraway", far)
    assert error_of(err.value)[:3] == (
        404, "NotFound", f"The Image '{image.id}' cannot be found in 'eastus' region.")

    # Azure lets an image in use be deleted: the VM has its own disk
    images.begin_delete(kit.group, "golden").result()
    with pytest.raises(ResourceNotFoundError):
        images.get(kit.group, "golden")
    assert kit.statuses("fromimage")[-1] == "PowerState/running"
    kit.compute.virtual_machines.begin_restart(kit.group, "fromimage").result()
    assert kit.statuses("fromimage")[-1] == "PowerState/running"


def test_image_must_be_in_the_vm_region_and_well_named(kit: Kit):
    vm = _generalized(kit, "src2")
    with pytest.raises(ResourceNotFoundError) as err:
        kit.compute.images.begin_create_or_update(kit.group, "farimg", _image_body(kit, vm.id, location="eastus")).result()
    assert error_of(err.value)[:3] == (
        404, "NotFound", f"Source Virtual Machine '{vm.id}' specified in the request does not exist in this Azure location.")
    with pytest.raises(HttpResponseError) as err:
        kit.compute.images.begin_create_or_update(kit.group, "bad-name-", _image_body(kit, vm.id)).result()
    status, code, message, target = error_of(err.value)
    assert (status, code, target) == (400, "InvalidParameter", "imageName")
    assert message == ("The entity name 'imageName' is invalid according to its validation rule: "
                       "^[^_\\W][\\w-._]{0,79}(?<![-.])$.")
