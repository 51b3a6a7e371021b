"""Where an image version's bits come from: a VM, a managed image, another version, or a VHD blob.

Each source is resolved once, when the version is created, to a disk descriptor plus what the
definition must agree with (OS type, OS state, Hyper-V generation) and the disk size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError, BadRequest, Conflict, InvalidParameter, NotFound
from emulator.core.ids import parse
from emulator.core.store import Resource
from emulator.guests.imported import descriptor_for
from emulator.storage import blobs, imported

SP = "galleryImageVersion.properties.storageProfile"


@dataclass
class Source:
    kind: str  # "vm" | "image" | "version" | "vhd"
    ref: str  # the id or URI as the request gave it
    target: str  # the request property that named it
    disk: dict[str, Any]
    os_type: str
    os_state: str
    hyper_v_generation: str
    size_gb: int
    owned: bool  # the disk was made for this version (a VM capture): the version frees it


def named(storage_profile: Any) -> tuple[str, str]:
    """(property path, reference) of the one source a storageProfile names."""
    sp = storage_profile if isinstance(storage_profile, dict) else {}
    src = sp.get("source") or {}
    os_src = (sp.get("osDiskImage") or {}).get("source") or {}
    found: dict[str, str] = {}
    for path, value in ((f"{SP}.source.id", src.get("id")),
                        (f"{SP}.source.virtualMachineId", src.get("virtualMachineId")),
                        (f"{SP}.osDiskImage.source.id", os_src.get("id")),
                        (f"{SP}.osDiskImage.source.uri", os_src.get("uri"))):
        if isinstance(value, str) and value.strip():
            found[path] = value.strip()
    refs = {v.lower() for v in found.values()}
    if len(refs) != 1:
        raise InvalidParameter(
            "The gallery artifact version source can only be specified either directly under storageProfile or within "
            "individual OS or data disks. One and only one source type (user image, snapshot, disk, virtual machine) "
            "can be provided.",
            target=SP,
        )
    path = next(iter(found))
    return path, found[path]


def same(a: Any, b: Any) -> bool:
    """Do two storageProfiles name the same source?"""
    try:
        return named(a)[1].rstrip("/").lower() == named(b)[1].rstrip("/").lower()
    except ArmError:
        return False


def resolve(ctx: Context, storage_profile: Any, *, location: str, definition: Resource) -> Source:
    target, ref = named(storage_profile)
    if target.endswith(".uri"):
        return _vhd(ctx, storage_profile, ref, target, definition)
    try:
        rid = parse(ref)
    except ValueError as exc:
        raise InvalidParameter(
            f"Property id '{ref}' at path '{target.split('.', 1)[1]}' is invalid. Expect fully qualified resource Id "
            "that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
            target=target,
        ) from exc
    rtype = rid.type.lower()
    if target.endswith("osDiskImage.source.id"):
        if rtype in ("microsoft.compute/disks", "microsoft.compute/snapshots"):
            raise InvalidParameter(
                f"The source id: {ref} is a managed disk or snapshot: the local Azure creates image versions from "
                "virtual machines, managed images, other image versions and VHD blobs only.",
                target=target,
            )
        raise InvalidParameter(f"The source id: {ref} must be a managed disk or snapshot.", target=target)
    if rtype == "microsoft.compute/virtualmachines":
        return _from(ctx, "vm", ref, target, location, owned=True)
    if target.endswith("virtualMachineId"):
        raise InvalidParameter(f"The source id: {ref} must be a virtual machine.", target=target)
    if rtype == "microsoft.compute/images":
        return _from(ctx, "image", ref, target, location, owned=False)
    if rtype == "microsoft.compute/galleries/images/versions":
        return _from(ctx, "version", ref, target, location, owned=False)
    raise InvalidParameter(
        f"The source id: {ref} must either be a managed image, virtual machine or another gallery image version",
        target=target,
    )


def _not_found(ref: str) -> NotFound:
    return NotFound(
        f"Source {ref} is not found. Please check source exists, and is in the same region as gallery image version "
        "being created.",
        code="NotFound",
    )


def _from(ctx: Context, kind: str, ref: str, target: str, location: str, *, owned: bool) -> Source:
    """A source another service knows: compute for VMs and managed images, this service for versions."""
    try:
        if kind == "vm":
            from emulator.services.compute.models import capture_source

            found = capture_source(ctx, ref)
        elif kind == "image":
            from emulator.services.compute.images import image_source

            found = image_source(ctx, ref, location)
        else:
            from emulator.services.gallery.versions import replica_source

            found = replica_source(ctx, ref, location)
    except ImportError as exc:  # the compute service is not part of this emulator build
        raise _not_found(ref) from exc
    except ArmError as exc:
        if exc.status == 404:
            raise _not_found(ref) from exc
        raise
    if str(found.get("location", location)).replace(" ", "").lower() != location:
        raise _not_found(ref)
    return Source(
        kind=kind, ref=ref, target=target, disk=found["disk"], os_type=found["os_type"], os_state=found["os_state"],
        hyper_v_generation=found.get("hyper_v_generation") or "V1", size_gb=int(found.get("size_gb") or 30),
        owned=owned,
    )


def _vhd(ctx: Context, storage_profile: dict[str, Any], uri: str, target: str, definition: Resource) -> Source:
    """A VHD blob: in Azurite when its account is a storage account here, else in the private blob store."""
    account_id = ((storage_profile.get("osDiskImage") or {}).get("source") or {}).get("storageAccountId")
    in_azurite = imported.local_account(ctx, uri)
    if in_azurite is not None:
        if account_id:
            _check_account(account_id, in_azurite.account, uri)
        path = imported.fetch_vhd(ctx, uri, target=target)
    else:
        try:
            account, container, name = blobs.parse_url(uri)
            path = blobs.path_of(ctx, account, container, name)
        except (ValueError, ArmError) as exc:
            raise InvalidParameter(
                f"The value '{uri}' of parameter '{target}' is not a valid blob URI: expected "
                f"https://{{account}}{blobs.HOST_SUFFIX}/{{container}}/{{blob}}.",
                target=target,
            ) from exc
        if account_id:
            _check_account(account_id, account, uri)
        if not path.is_file():
            raise InvalidParameter(f"Source was not found: {uri}. Please make sure the source exists.", target=target)
    footer = imported.check_footer(path, uri, target)
    props = definition.properties
    return Source(
        kind="vhd", ref=uri, target=target, disk=descriptor_for(ctx, path, os_type=str(definition.properties["osType"])),
        os_type=props["osType"], os_state=props["osState"], hyper_v_generation=props.get("hyperVGeneration", "V1"),
        size_gb=imported.size_gb(footer), owned=False,
    )


def _check_account(account_id: str, account: str, uri: str) -> None:
    try:
        rid = parse(account_id)
    except ValueError:
        rid = None
    if rid is None or rid.type.lower() != "microsoft.storage/storageaccounts" or rid.name.lower() != account:
        raise InvalidParameter(
            f"The storage account '{account_id}' does not hold the blob '{uri}': the blob's account is '{account}'.",
            target=f"{SP}.osDiskImage.source.storageAccountId",
        )


def check_against(source: Source, definition: Resource) -> None:
    """The source must agree with its definition: OS state, Hyper-V generation, OS type."""
    props = definition.properties
    ref = source.ref
    if source.os_state.lower() != str(props["osState"]).lower():
        raise BadRequest(
            f"The resource with id '{ref}' has a different OS state ['{source.os_state}'] than the parent gallery "
            f"image OS state ['{props['osState']}']."
        )
    want_gen = str(props.get("hyperVGeneration") or "V1")
    if source.hyper_v_generation.lower() != want_gen.lower():
        raise Conflict(
            f"The resource with id '{ref}' has a different Hypervisor generation ['{source.hyper_v_generation}'] than "
            f"the parent gallery image Hypervisor generation ['{want_gen}']."
        )
    if source.os_type.lower() != str(props["osType"]).lower():
        raise Conflict(
            f"The resource with id '{ref}' has a different OS type ['{source.os_type}'] than the parent gallery image "
            f"OS type generation ['{props['osType']}']."
        )
