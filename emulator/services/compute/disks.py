"""Managed OS disks (Microsoft.Compute/disks): the ARM record of each VM's OS disk.

The bytes live with the guest runtime (the VM's copy-on-write disk); the record lets clients
GET, list and delete the disk the way they do in Azure. A VM deleted with the OS disk's
``deleteOption: Detach`` (Azure's default) leaves the record behind, Unattached.
"""

from __future__ import annotations

import uuid
from typing import Any

from emulator.core import ids, lro
from emulator.core.context import Context
from emulator.core.errors import ArmError, OperationNotAllowed, resource_not_found
from emulator.core.lifecycle import remove
from emulator.core.store import Resource
from emulator.services.compute import instance_view
from emulator.services.resources.models import get_group

DISK_TYPE = "Microsoft.Compute/disks"
DELETE_SECONDS = 10.0
TIERS = ((4, "P1"), (8, "P2"), (16, "P3"), (32, "P4"), (64, "P6"), (128, "P10"), (256, "P15"), (512, "P20"))


def disk_rid(ctx: Context, group: str, name: str) -> str:
    return str(ids.resource_id(ctx.subscription, group, "Microsoft.Compute", "disks", name))


def _tier(size_gb: int) -> str:
    return next((t for limit, t in TIERS if size_gb <= limit), "P30")


def create_os_disk(ctx: Context, *, group: str, name: str, location: str, vm_id: str, size_gb: int,
                   sku: str, source: dict[str, Any], image_reference: dict[str, Any]) -> Resource:
    """Record the OS disk of a new VM, attached to it."""
    rid = disk_rid(ctx, group, name)
    if ctx.store.get(rid) is not None:
        raise ArmError(
            f"Disk {name} already exists in resource group {group.upper()}. Only CreateOption.Attach is supported.",
            code="ConflictingUserInput", status=409, target="/disks/" + name,
        )
    creation: dict[str, Any] = {"createOption": "FromImage"}
    ref_id = source.get("version_id") or source.get("image_id")
    if ref_id and str(ref_id).lower().count("/galleries/"):
        creation["galleryImageReference"] = {"id": ref_id}
    elif ref_id:
        creation["imageReference"] = {"id": ref_id}
    disk = Resource(
        id=rid,
        type=DISK_TYPE,
        body={
            "id": rid,
            "name": name,
            "type": DISK_TYPE,
            "location": location,
            "managedBy": vm_id,
            "sku": {"name": sku, "tier": "Premium" if sku.startswith("Premium") else "Standard"},
            "properties": {
                "osType": source.get("os_type", "Linux"),
                "hyperVGeneration": source.get("hyper_v_generation", "V1"),
                "creationData": creation,
                "diskSizeGB": size_gb,
                "diskSizeBytes": size_gb * 1024 ** 3,
                "uniqueId": str(uuid.uuid4()),
                "diskState": "Attached",
                "provisioningState": "Succeeded",
                "timeCreated": instance_view.timestamp(ctx.now()),
                "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                "networkAccessPolicy": "AllowAll",
                "publicNetworkAccess": "Enabled",
                "tier": _tier(size_gb) if sku.startswith("Premium") else None,
            },
        },
    )
    if disk.properties["tier"] is None:
        del disk.properties["tier"]
    ctx.store.put(disk)
    return disk


def detach(ctx: Context, disk_id: str) -> None:
    """The VM is gone but the disk stays (deleteOption Detach)."""
    disk = ctx.store.get(disk_id)
    if disk is not None:
        disk.body.pop("managedBy", None)
        disk.properties["diskState"] = "Unattached"
        ctx.store.put(disk)


def get_disk(ctx: Context, group: str, name: str) -> Resource:
    g = get_group(ctx, group)
    found = ctx.store.get(disk_rid(ctx, g.name, name))
    if found is None:
        raise resource_not_found(DISK_TYPE, name, g.name)
    return found


def list_disks(ctx: Context, group: str | None = None) -> list[Resource]:
    scope = get_group(ctx, group).id if group is not None else f"/subscriptions/{ctx.subscription}"
    return ctx.store.of_type(DISK_TYPE, scope)


def begin_delete(ctx: Context, group: str, name: str, fail_with: dict[str, str] | None) -> tuple[str, str] | None:
    """Start deleting a disk; refused while a VM uses it; None when there is nothing to delete."""
    get_group(ctx, group)
    disk = ctx.store.get(disk_rid(ctx, group, name))
    if disk is None:
        return None
    if disk.body.get("managedBy"):
        raise OperationNotAllowed(f"Disk {disk.name} is attached to VM {disk.body['managedBy']}.")
    op = lro.start(ctx, provider="compute", location=disk.body["location"], handler="compute.disk_delete",
                   args={"id": disk.id}, delay=ctx.duration(DELETE_SECONDS), fail_with=fail_with)
    return op, disk.body["location"]


def _deleted(ctx: Context, args: dict[str, Any]) -> None:
    disk = ctx.store.get(args["id"])
    if disk is not None and not disk.body.get("managedBy"):
        remove(ctx, disk)


lro.on_complete("compute.disk_delete")(_deleted)
