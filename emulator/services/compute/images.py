"""Managed images (Microsoft.Compute/images): regional captures of a generalized VM's OS disk.

An image owns the disk descriptor the guest runtime captured; deleting the image releases it,
even while VMs made from it still run (Azure allows that: a VM's disk is its own copy).
"""

from __future__ import annotations

import uuid
from typing import Any

from emulator.core import ids, lro
from emulator.core.context import Context
from emulator.core.errors import (
    ArmError,
    InvalidParameter,
    NotFound,
    OperationNotAllowed,
    resource_not_found,
)
from emulator.core.lifecycle import on_remove, remove
from emulator.core.regions import canonical
from emulator.core.store import Resource
from emulator.guests.imported import descriptor_for
from emulator.services.compute import vms
from emulator.services.resources.models import get_group

IMAGE_TYPE = "Microsoft.Compute/images"
CREATE_SECONDS = 60.0
DELETE_SECONDS = 20.0


def image_rid(ctx: Context, group: str, name: str) -> str:
    return str(ids.resource_id(ctx.subscription, group, "Microsoft.Compute", "images", name))


def get_image(ctx: Context, group: str, name: str) -> Resource:
    g = get_group(ctx, group)
    found = ctx.store.get(image_rid(ctx, group, name))
    if found is None:
        raise resource_not_found(IMAGE_TYPE, name, g.name)
    return found


def list_images(ctx: Context, group: str | None = None) -> list[Resource]:
    if group is not None:
        g = get_group(ctx, group)
        return ctx.store.of_type(IMAGE_TYPE, g.id)
    return ctx.store.of_type(IMAGE_TYPE, f"/subscriptions/{ctx.subscription}")


def _source_vm_id(props: dict[str, Any]) -> str | None:
    src = props.get("sourceVirtualMachine")
    return str(src["id"]) if isinstance(src, dict) and src.get("id") else None


def _vm_not_here(vm_id: str) -> NotFound:
    return NotFound(
        f"Source Virtual Machine '{vm_id}' specified in the request does not exist in this Azure location.",
        code="NotFound",
    )


def put_image(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str],
              fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    """Create an image from a generalized VM or a VHD blob (or update an existing one's tags)."""
    vms.entity_name(name, "imageName")
    g = get_group(ctx, group)
    rid = image_rid(ctx, g.name, name)
    location = canonical(body.get("location"))
    props = body.get("properties") or {}
    existing = ctx.store.get(rid)
    if existing is not None:
        return _update(ctx, existing, location, props, tags)
    source_id = _source_vm_id(props)
    os_disk = ((props.get("storageProfile") or {}).get("osDisk")) or {}
    if source_id is None:
        if os_disk.get("blobUri"):
            return _from_blob(ctx, rid, name, location, props, os_disk, tags, fail_with)
        if os_disk.get("managedDisk") or os_disk.get("snapshot"):
            raise InvalidParameter(
                "The local Azure creates managed images from a VM or a VHD blob only: give "
                "properties.sourceVirtualMachine.id or properties.storageProfile.osDisk.blobUri.",
                target="sourceVirtualMachine",
            )
        raise InvalidParameter("Required parameter 'sourceVirtualMachine' is missing (null).",
                               target="sourceVirtualMachine")
    from emulator.services.compute import models

    vm = ctx.store.get(source_id)
    if vm is None or vm.type.lower() != models.VM_TYPE.lower() or vm.body.get("location") != location:
        raise _vm_not_here(source_id)
    if not vm.internal.get("generalized"):
        raise OperationNotAllowed(
            f"The operation 'Create Image' requires the Virtual Machine '{vm.name}' to be Generalized."
        )
    vm_source = vm.internal.get("source") or {}
    hyper_v = str(props.get("hyperVGeneration") or vm_source.get("hyper_v_generation", "V1"))
    if hyper_v != vm_source.get("hyper_v_generation", "V1"):
        raise InvalidParameter(
            f"The Hyper-V generation '{hyper_v}' of the image does not match the Hyper-V generation "
            f"'{vm_source.get('hyper_v_generation', 'V1')}' of the source virtual machine '{vm.name}'.",
            target="hyperVGeneration",
        )
    if os_disk.get("osState") and os_disk["osState"] != "Generalized":
        raise InvalidParameter("Managed images hold generalized OS disks only: osState must be 'Generalized'.",
                               target="osDisk.osState")
    if os_disk.get("osType") and str(os_disk["osType"]).lower() != str(vm.internal.get("os_type", "")).lower():
        raise InvalidParameter(
            f"The osType '{os_disk['osType']}' does not match the OS type '{vm.internal.get('os_type')}' of the "
            f"source virtual machine '{vm.name}'.",
            target="osDisk.osType",
        )
    captured: dict[str, Any] = {}
    if fail_with is None:
        captured = models.capture_source(ctx, vm.id)
    vm_disk = ((vm.properties.get("storageProfile") or {}).get("osDisk")) or {}
    wire_disk: dict[str, Any] = {
        "osType": vm.internal.get("os_type", "Linux"),
        "osState": "Generalized",
        "diskSizeGB": int(vm_disk.get("diskSizeGB") or vm_source.get("size_gb") or 30),
        "managedDisk": {"id": (vm_disk.get("managedDisk") or {}).get("id")},
        "caching": "ReadWrite",
        "storageAccountType": os_disk.get("storageAccountType", "Standard_LRS"),
    }
    if os_disk.get("blobUri"):
        wire_disk["blobUri"] = os_disk["blobUri"]
    image = Resource(
        id=rid,
        type=IMAGE_TYPE,
        body={
            "id": rid,
            "name": name,
            "type": IMAGE_TYPE,
            "location": location,
            "tags": tags,
            "properties": {
                "sourceVirtualMachine": {"id": vm.id},
                "storageProfile": {
                    "osDisk": wire_disk,
                    "dataDisks": [],
                    "zoneResilient": bool((props.get("storageProfile") or {}).get("zoneResilient", False)),
                },
                "provisioningState": "Creating",
                "hyperVGeneration": hyper_v,
            },
        },
        internal={
            "disk": captured.get("disk"),
            "os_type": vm.internal.get("os_type", "Linux"),
            "hyper_v_generation": hyper_v,
            "size_gb": wire_disk["diskSizeGB"],
            "os_name": vm_source.get("os_name"),
            "os_version": vm_source.get("os_version"),
            "token": uuid.uuid4().hex,
        },
    )
    ctx.store.put(image)
    op = lro.start(ctx, provider="compute", location=location, handler="compute.image_create",
                   args={"id": rid, "token": image.internal["token"]}, delay=ctx.duration(CREATE_SECONDS),
                   fail_with=fail_with)
    return image, True, op


def _from_blob(ctx: Context, rid: str, name: str, location: str, props: dict[str, Any], os_disk: dict[str, Any],
               tags: dict[str, str], fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    """An image from a generalized fixed VHD uploaded as a page blob to a storage account of this emulator."""
    from emulator.storage import imported

    os_type = os_disk.get("osType")
    vms.required(os_type, "osDisk.osType")
    if str(os_type).lower() not in ("linux", "windows"):
        raise InvalidParameter(f"The value '{os_type}' of parameter 'osDisk.osType' is invalid: use Linux or Windows.",
                               target="osDisk.osType")
    os_type = "Linux" if str(os_type).lower() == "linux" else "Windows"
    vms.required(os_disk.get("osState"), "osDisk.osState")
    if os_disk["osState"] != "Generalized":
        raise InvalidParameter("Managed images hold generalized OS disks only: osState must be 'Generalized'.",
                               target="osDisk.osState")
    hyper_v = str(props.get("hyperVGeneration") or "V1")
    if hyper_v not in ("V1", "V2"):
        raise InvalidParameter(f"The value '{hyper_v}' of parameter 'hyperVGeneration' is invalid: use V1 or V2.",
                               target="hyperVGeneration")
    uri = str(os_disk["blobUri"])
    path = imported.fetch_vhd(ctx, uri, target="osDisk.blobUri")
    size_gb = imported.size_gb(imported.check_footer(path, uri, "osDisk.blobUri"))
    asked = os_disk.get("diskSizeGB")
    if asked is not None and (not isinstance(asked, int) or asked < size_gb):
        raise InvalidParameter(
            f"The specified disk size {asked} GB is smaller than the size of the VHD blob {uri} ({size_gb} GB).",
            target="osDisk.diskSizeGB",
        )
    image = Resource(
        id=rid,
        type=IMAGE_TYPE,
        body={
            "id": rid, "name": name, "type": IMAGE_TYPE, "location": location, "tags": tags,
            "properties": {
                "storageProfile": {
                    "osDisk": {
                        "osType": os_type, "osState": "Generalized", "blobUri": uri, "diskSizeGB": asked or size_gb,
                        "caching": os_disk.get("caching", "ReadWrite"),
                        "storageAccountType": os_disk.get("storageAccountType", "Standard_LRS"),
                    },
                    "dataDisks": [],
                    "zoneResilient": bool((props.get("storageProfile") or {}).get("zoneResilient", False)),
                },
                "provisioningState": "Creating",
                "hyperVGeneration": hyper_v,
            },
        },
        # the downloaded VHD, as the guest runtime boots it (its kernel or its facts read off the disk)
        internal={"disk": descriptor_for(ctx, path, os_type=os_type), "os_type": os_type, "hyper_v_generation": hyper_v,
                  "size_gb": asked or size_gb, "os_name": None, "os_version": None, "token": uuid.uuid4().hex},
    )
    ctx.store.put(image)
    op = lro.start(ctx, provider="compute", location=location, handler="compute.image_create",
                   args={"id": rid, "token": image.internal["token"]}, delay=ctx.duration(CREATE_SECONDS),
                   fail_with=fail_with)
    return image, True, op


def _update(ctx: Context, image: Resource, location: str, props: dict[str, Any],
            tags: dict[str, str]) -> tuple[Resource, bool, str]:
    if image.body["location"] != location:
        raise ArmError(
            f"The resource '{image.name}' already exists in location '{image.body['location']}' in resource group "
            f"'{ids.parse(image.id).group}'. A resource with the same name cannot be created in location "
            f"'{location}'. Please select a new resource name.",
            code="InvalidResourceLocation", status=409,
        )
    source_id = _source_vm_id(props)
    old_source = (image.properties.get("sourceVirtualMachine") or {}).get("id", "")
    if source_id is not None and source_id.lower() != str(old_source).lower():
        raise vms.property_change("sourceVirtualMachine")
    blob_uri = (((props.get("storageProfile") or {}).get("osDisk")) or {}).get("blobUri")
    old_blob = ((image.properties.get("storageProfile") or {}).get("osDisk") or {}).get("blobUri")
    if blob_uri and str(blob_uri) != str(old_blob or ""):
        raise vms.property_change("osDisk.blobUri")
    image.body["tags"] = tags
    ctx.store.put(image)
    op = lro.start(ctx, provider="compute", location=location, handler="compute.noop", args={}, delay=0.0)
    return image, False, op


def patch_image(ctx: Context, group: str, name: str, tags: dict[str, str] | None) -> tuple[Resource, str]:
    image = get_image(ctx, group, name)
    if tags is not None:
        image.body["tags"] = tags
        ctx.store.put(image)
    op = lro.start(ctx, provider="compute", location=image.body["location"], handler="compute.noop", args={}, delay=0.0)
    return image, op


def begin_delete(ctx: Context, group: str, name: str, fail_with: dict[str, str] | None) -> tuple[str, str] | None:
    """Start deleting an image; None when there is nothing to delete (ARM answers 204)."""
    get_group(ctx, group)
    image = ctx.store.get(image_rid(ctx, group, name))
    if image is None:
        return None
    image.properties["provisioningState"] = "Deleting"
    ctx.store.put(image)
    op = lro.start(ctx, provider="compute", location=image.body["location"], handler="compute.image_delete",
                   args={"id": image.id}, delay=ctx.duration(DELETE_SECONDS), fail_with=fail_with)
    return op, image.body["location"]


def image_source(ctx: Context, image_id: str, location: str) -> dict[str, Any]:
    """What a VM (or a gallery image version) built from this managed image needs.

    Managed images are regional: asking from another region is Azure's 404.
    """
    region = canonical(location)
    image = ctx.store.get(image_id)
    if image is None or image.type.lower() != IMAGE_TYPE.lower() or image.body.get("location") != region:
        raise NotFound(f"The Image '{image_id}' cannot be found in '{region}' region.", code="NotFound")
    state = image.properties.get("provisioningState")
    if state != "Succeeded" or not image.internal.get("disk"):
        raise ArmError(
            f"The Image '{image_id}' is not ready to be used: its provisioning state is '{state}'.",
            code="OperationNotAllowed", status=409,
        )
    return {
        "disk": dict(image.internal["disk"]),
        "os_type": image.internal.get("os_type", "Linux"),
        "os_state": "Generalized",
        "hyper_v_generation": image.internal.get("hyper_v_generation", "V1"),
        "version_id": None,
        "image_id": image.id,
        "size_gb": image.internal.get("size_gb", 30),
        "os_name": image.internal.get("os_name"),
        "os_version": image.internal.get("os_version"),
        "location": region,
    }


# operation completions ----------------------------------------------------------------------
def _created(ctx: Context, args: dict[str, Any]) -> None:
    image = ctx.store.get(args["id"])
    if image is not None and image.internal.get("token") == args.get("token"):
        image.properties["provisioningState"] = "Succeeded"
        ctx.store.put(image)


def _create_failed(ctx: Context, args: dict[str, Any]) -> None:
    image = ctx.store.get(args["id"])
    if image is not None and image.internal.get("token") == args.get("token"):
        image.properties["provisioningState"] = "Failed"
        ctx.store.put(image)


def _deleted(ctx: Context, args: dict[str, Any]) -> None:
    image = ctx.store.get(args["id"])
    if image is not None:
        remove(ctx, image)


def _delete_failed(ctx: Context, args: dict[str, Any]) -> None:
    image = ctx.store.get(args["id"])
    if image is not None:
        image.properties["provisioningState"] = "Failed"
        ctx.store.put(image)


def _noop(ctx: Context, args: dict[str, Any]) -> None:
    """Operations with nothing left to do when they settle (an update that changed only tags)."""


lro.on_complete("compute.noop")(_noop)
lro.on_complete("compute.image_create", _create_failed)(_created)
lro.on_complete("compute.image_delete", _delete_failed)(_deleted)


@on_remove(IMAGE_TYPE)
def _release(ctx: Context, image: Resource) -> None:
    """An image leaving (deleted, or its group deleted) gives its disk back to the runtime."""
    disk = image.internal.get("disk")
    if disk:
        from emulator.services.compute import runtime

        runtime.release_disk(ctx, disk)
