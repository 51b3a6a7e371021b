"""Image versions: created from a source, replicated region by region, updated, deleted, and resolved
(a version, or a definition's latest) for a VM booting in a region.

The create/update operation of a version settles when its last region finishes: Succeeded when
every region completed, Failed when one failed. Until then provisioningState stays Creating
(Updating after an update), as in Azure.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.errors import ArmError, InvalidParameter, NotFound, OperationNotAllowed
from emulator.core.ids import parse
from emulator.core.lifecycle import on_remove
from emulator.core.store import Resource
from emulator.services.gallery import common, disks, names, publishing, replication, sources
from emulator.services.gallery.common import DEFINITION, PROVIDER, VERSION

DELETE_SECONDS = 60.0
SP = "galleryImageVersion.properties.storageProfile"
HOST_CACHING = {"none": "None", "readonly": "ReadOnly", "readwrite": "ReadWrite"}


# create / update -------------------------------------------------------------------------------
def put_version(ctx: Context, group: str, gallery: str, image: str, name: str, body: dict[str, Any],
                tags: dict[str, str], fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    names.check_version(name)
    group = common.group_name(ctx, group)
    definition = common.require_parent(ctx, group, gallery, image)
    common.refuse_if_deleting(definition)
    def_id = parse(definition.id)
    gallery, image = def_id.segments[0][1], def_id.segments[1][1]
    location = common.location_of(body.get("location"))
    props = body.get("properties") or {}
    rid = str(common.rid(ctx, group, gallery, image, name))
    existing = ctx.store.get(rid)
    if existing is not None:
        common.refuse_if_deleting(existing)
        common.same_location(existing, location, group, f"{gallery}/{image}/{name}")
        _put_existing(ctx, existing, props, tags, fail_with)
        return existing, False, existing.internal["lro"]
    pub = publishing.parse(ctx, props.get("publishingProfile"), location)
    source = sources.resolve(ctx, props.get("storageProfile"), location=location, definition=definition)
    try:
        sources.check_against(source, definition)
        master = source.disk if source.owned else disks.master(ctx, source.disk, rid)
    except BaseException:
        if source.owned:
            disks.release(ctx, source.disk)
        raise
    resource = Resource(id=rid, type=VERSION, body={
        "id": rid, "name": name, "type": VERSION, "location": location, "tags": tags,
        "properties": {
            "publishingProfile": pub.wire(common.now_iso(ctx)),
            "storageProfile": _storage_wire(props.get("storageProfile") or {}, source),
            "safetyProfile": _safety(props.get("safetyProfile"), None),
        },
    }, internal={
        "master": master,
        "master_owned": source.owned or disks.is_file_backed(master),
        "size_gb": source.size_gb,
        "source_kind": source.kind,
        "regions": {},
        "order": [],
    })
    now = ctx.now()
    started = _reconcile(ctx, resource, pub, now)
    _begin(ctx, resource, "Creating", started, now, fail_with)
    return resource, True, resource.internal["lro"]


def _put_existing(ctx: Context, version: Resource, props: dict[str, Any], tags: dict[str, str],
                  fail_with: dict[str, str] | None) -> None:
    """A PUT on an existing version: only the publishing profile, safety profile and tags may change."""
    sp = props.get("storageProfile")
    if sp is not None and not sources.same(sp, version.properties["storageProfile"]):
        raise common.property_change(sources.named(sp)[0])
    location = version.body["location"]
    old = publishing.from_wire(ctx, version.properties["publishingProfile"], location)
    pub = publishing.parse(ctx, props.get("publishingProfile"), location, previous=old)
    publishing.immutable_changes(pub, old)
    safety = _safety(props.get("safetyProfile"), version)
    _update(ctx, version, pub, safety, tags, fail_with)


def patch_version(ctx: Context, group: str, gallery: str, image: str, name: str, body: dict[str, Any],
                  tags: dict[str, str] | None, fail_with: dict[str, str] | None) -> tuple[Resource, str]:
    """``begin_update``: publishing profile (merged field by field), safety profile and tags."""
    version = common.get(ctx, group, gallery, image, name)
    common.refuse_if_deleting(version)
    props = body.get("properties") or {}
    sp = props.get("storageProfile")
    if sp is not None and not sources.same(sp, version.properties["storageProfile"]):
        raise InvalidParameter(f"Parameter '{SP}' is not allowed.", target=SP)
    location = version.body["location"]
    old = publishing.from_wire(ctx, version.properties["publishingProfile"], location)
    pub = old
    if isinstance(props.get("publishingProfile"), dict):
        current = {k: v for k, v in version.properties["publishingProfile"].items() if k != "publishedDate"}
        merged = {**current, **{k: v for k, v in props["publishingProfile"].items() if v is not None}}
        pub = publishing.parse(ctx, merged, location, previous=old)
        publishing.immutable_changes(pub, old)
    safety = _safety(props.get("safetyProfile"), version)
    _update(ctx, version, pub, safety, tags if tags is not None else version.body.get("tags") or {}, fail_with)
    return version, version.internal["lro"]


def _update(ctx: Context, version: Resource, pub: publishing.Publishing, safety: dict[str, Any],
            tags: dict[str, str], fail_with: dict[str, str] | None) -> None:
    now = ctx.now()
    regions = version.internal["regions"]
    wanted = {t.region for t in pub.targets}
    removed = [r for r in regions if r not in wanted]
    replicated = [r for r in removed if replication.state(regions[r], now)[0] == "Completed"]
    if replicated and not safety["allowDeletionOfReplicatedLocations"]:
        raise OperationNotAllowed(
            f"Removing replicated region(s) '{','.join(replicated)}' from gallery image version '{version.id}' is not "
            "allowed: its safetyProfile.allowDeletionOfReplicatedLocations is false.",
            target="galleryImageVersion.properties.safetyProfile.allowDeletionOfReplicatedLocations",
        )
    version.body["tags"] = tags
    version.properties["safetyProfile"] = safety
    published = version.properties["publishingProfile"]["publishedDate"]
    version.properties["publishingProfile"] = pub.wire(published)
    started = _reconcile(ctx, version, pub, now)
    creating = version.properties.get("provisioningState") == "Creating"
    _begin(ctx, version, "Creating" if creating else "Updating", started, now, fail_with)


def _reconcile(ctx: Context, version: Resource, pub: publishing.Publishing, now: float) -> list[str]:
    """Make the regions match the targets: drop removed ones, start new (or failed) ones; returns those started."""
    regions: dict[str, dict[str, Any]] = version.internal["regions"]
    wanted = {t.region: t for t in pub.targets}
    for region in [r for r in regions if r not in wanted]:
        gone = regions.pop(region)
        if disks.is_file_backed(gone.get("disk")):
            disks.release(ctx, gone["disk"])
    started = []
    location = version.body["location"]
    for t in pub.targets:
        rec = regions.get(t.region)
        if rec is None or replication.state(rec, now)[0] == "Failed":
            regions[t.region] = replication.start(
                ctx, version.id, t.region, source=t.region == location, size_gb=version.internal["size_gb"],
                replica_count=t.replica_count, storage_account_type=t.storage_account_type,
                exclude_from_latest=t.exclude_from_latest, master=version.internal["master"], now=now,
            )
            started.append(t.region)
        else:
            rec.update(replica_count=t.replica_count, exclude_from_latest=t.exclude_from_latest)
    version.internal["order"] = [t.region for t in pub.targets]
    version.internal["exclude_from_latest"] = pub.exclude_from_latest
    return started


def _begin(ctx: Context, version: Resource, state: str, started: list[str], now: float,
           fail_with: dict[str, str] | None) -> None:
    """Start the operation that settles when the last region finishes replicating."""
    token = uuid.uuid4().hex
    version.properties["provisioningState"] = state
    version.internal["op"] = token
    version.internal.pop("replication_failed", None)
    delay = replication.remaining(version.internal["regions"], now)  # None: the copies settle it when done
    # earlier operations still running (a create being updated) now end with this one, as one piece of work
    pending = [op for op in version.internal.get("pending_ops", []) if _in_progress(ctx, op)]
    for op in pending:
        lro.reschedule(ctx, op, None if delay is None else now + delay)
    version.internal["lro"] = lro.start(
        ctx, provider=PROVIDER, location=version.body["location"], handler="gallery.version_settled",
        args={"id": version.id, "token": token, "regions": started}, delay=delay, fail_with=fail_with,
    )
    version.internal["pending_ops"] = [*pending, version.internal["lro"]]
    ctx.store.put(version)


def _in_progress(ctx: Context, op_id: str) -> bool:
    found = ctx.store.get_operation(op_id)
    return found is not None and found[0] == "InProgress"


def _first_failure(version: Resource, now: float) -> tuple[str, dict[str, Any], str] | None:
    for region in version.internal["order"]:
        rec = version.internal["regions"][region]
        st, _progress, details = replication.state(rec, now)
        if st == "Failed":
            return region, rec, details
    return None


def _settled(ctx: Context, args: dict[str, Any]) -> None:
    version = ctx.store.get(args["id"])
    if version is None:
        return  # deleted meanwhile
    failure = _first_failure(version, ctx.now())
    current = version.internal.get("op") == args["token"]
    if current:
        version.properties["provisioningState"] = "Failed" if failure else "Succeeded"
        if failure is not None:
            version.internal["replication_failed"] = True
        ctx.store.put(version)
    if failure is not None:  # a superseded operation reports the outcome of the work it became part of
        region, rec, details = failure
        raise ArmError(
            f"Replication of gallery image version '{version.name}' failed in region '{region}'. {details}",
            code=rec["error"]["code"],
        )


def _settle_failed(ctx: Context, args: dict[str, Any]) -> None:
    """The operation failed: a region failed to replicate, or a fault failed the whole operation."""
    version = ctx.store.get(args["id"])
    if version is None or version.internal.get("op") != args["token"]:
        return
    if not version.internal.pop("replication_failed", False):
        now = ctx.now()
        for region in args.get("regions", []):
            rec = version.internal["regions"].get(region)
            if rec is not None and replication.state(rec, now)[0] != "Failed":
                replication.fail(ctx, rec, args["error"], now)
    version.properties["provisioningState"] = "Failed"
    ctx.store.put(version)


lro.on_complete("gallery.version_settled", _settle_failed)(_settled)


def _storage_wire(sp: dict[str, Any], source: sources.Source) -> dict[str, Any]:
    out: dict[str, Any] = {}
    src = sp.get("source") or {}
    if source.target.startswith(f"{SP}.source."):
        out["source"] = {k: src[k].strip() for k in ("id", "virtualMachineId") if isinstance(src.get(k), str)}
    os_image = sp.get("osDiskImage") or {}
    caching = str(os_image.get("hostCaching") or "ReadWrite")
    if caching.lower() not in HOST_CACHING:
        raise InvalidParameter(
            f"The value '{caching}' of parameter '{SP}.osDiskImage.hostCaching' is invalid. Allowed values are: "
            f"{', '.join(HOST_CACHING.values())}.",
            target=f"{SP}.osDiskImage.hostCaching",
        )
    disk: dict[str, Any] = {"sizeInGB": source.size_gb, "hostCaching": HOST_CACHING[caching.lower()]}
    os_src = os_image.get("source") or {}
    if source.target.startswith(f"{SP}.osDiskImage."):
        disk["source"] = {k: os_src[k] for k in ("id", "uri", "storageAccountId") if os_src.get(k)}
    out["osDiskImage"] = disk
    out["dataDiskImages"] = []
    return out


def _safety(requested: Any, existing: Resource | None) -> dict[str, Any]:
    before = existing.properties.get("safetyProfile", {}) if existing is not None else {}
    allow = before.get("allowDeletionOfReplicatedLocations", False)
    if isinstance(requested, dict) and requested.get("allowDeletionOfReplicatedLocations") is not None:
        allow = requested["allowDeletionOfReplicatedLocations"]
        if not isinstance(allow, bool):
            raise InvalidParameter(
                f"The value '{allow}' of parameter 'galleryImageVersion.properties.safetyProfile."
                "allowDeletionOfReplicatedLocations' is not a valid boolean.",
                target="galleryImageVersion.properties.safetyProfile.allowDeletionOfReplicatedLocations",
            )
    return {"allowDeletionOfReplicatedLocations": allow, "reportedForPolicyViolation": False}


# read / list / delete -----------------------------------------------------------------------------
def get_version(ctx: Context, group: str, gallery: str, image: str, name: str, *, expand: str | None) -> dict[str, Any]:
    version = common.get(ctx, group, gallery, image, name)
    return render(ctx, version, replication_status=bool(expand) and str(expand).lower() == "replicationstatus")


def render(ctx: Context, version: Resource, *, replication_status: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(version.body)
    if replication_status:
        body["properties"]["replicationStatus"] = replication.status(
            version.internal["order"], version.internal["regions"], ctx.now())
    return body


def list_versions(ctx: Context, group: str, gallery: str, image: str) -> list[Resource]:
    definition = common.get(ctx, group, gallery, image)
    return ctx.store.children(definition.id, VERSION)


def begin_delete_version(ctx: Context, group: str, gallery: str, image: str, name: str,
                         fail_with: dict[str, str] | None) -> tuple[Resource, str] | None:
    group = common.group_name(ctx, group)
    common.require_parent(ctx, group, gallery, image)
    version = ctx.store.get(str(common.rid(ctx, group, gallery, image, name)))
    if version is None:
        return None
    return version, common.begin_delete(ctx, version, delay=ctx.duration(DELETE_SECONDS), fail_with=fail_with)


@on_remove(VERSION)
def _release(ctx: Context, version: Resource) -> None:
    """A version going away (its own delete, or its group's) frees its replicas and its master disk."""
    replication.forget(ctx, version)  # copies still running stop, and their partial files go
    for rec in version.internal.get("regions", {}).values():
        if disks.is_file_backed(rec.get("disk")):
            disks.release(ctx, rec["disk"])
    if version.internal.get("master_owned"):
        disks.release(ctx, version.internal.get("master"))


# resolving for VMs -------------------------------------------------------------------------------
def not_available(image_id: str, region: str) -> NotFound:
    return NotFound(
        f"The gallery image {image_id} is not available in {region} region. Please contact image owner to replicate "
        "to this region, or change your requested region.",
        code="GalleryImageNotFound",
    )


def _latest(ctx: Context, definition: Resource, region: str) -> Resource:
    """The highest version not excluded from latest (globally or in ``region``) and usable in ``region``."""
    now = ctx.now()
    candidates = [
        v for v in ctx.store.children(definition.id, VERSION)
        if v.properties.get("provisioningState") == "Succeeded" and not v.internal.get("exclude_from_latest")
    ]
    if not candidates:
        raise NotFound(f'There is no latest image version exists for "{definition.id}"', code="GalleryImageNotFound")
    usable = []
    for v in candidates:
        rec = v.internal["regions"].get(region)
        if rec is not None and not rec.get("exclude_from_latest") and replication.state(rec, now)[0] == "Completed":
            usable.append(v)
    if not usable:
        raise not_available(definition.id, region)
    return max(usable, key=lambda v: names.version_key(v.name) or (0, 0, 0))


def _resolve(ctx: Context, image_id: str, location: str) -> tuple[Resource, Resource, dict[str, Any]]:
    region = str(location or "").replace(" ", "").lower()
    try:
        rid = parse(image_id)
    except ValueError:
        raise not_available(image_id, region) from None
    kind = rid.type.lower()
    if kind == DEFINITION.lower():
        definition = ctx.store.get(str(rid))
        if definition is None:
            raise not_available(image_id, region)
        version = _latest(ctx, definition, region)
    elif kind == VERSION.lower():
        found = ctx.store.get(str(rid))
        if found is None:
            raise not_available(image_id, region)
        version = found
        parent = ctx.store.get(version.id.rsplit("/versions/", 1)[0])
        if parent is None:
            raise not_available(image_id, region)
        definition = parent
    else:
        raise not_available(image_id, region)
    rec = version.internal["regions"].get(region)
    usable = rec is not None and replication.state(rec, ctx.now())[0] == "Completed"
    if not usable or version.properties.get("provisioningState") == "Deleting":
        raise not_available(version.id, region)
    return version, definition, rec  # type: ignore[return-value]


def image_source(ctx: Context, image_id: str, location: str) -> dict[str, Any]:
    """What a VM booting in ``location`` from a version (or a definition's latest version) gets.

    Returns ``{"disk", "os_type", "os_state", "hyper_v_generation", "version_id", "size_gb"}``; raises
    404 GalleryImageNotFound when the version has no completed replica in that region.
    """
    version, definition, rec = _resolve(ctx, image_id, location)
    props = definition.properties
    return {
        "disk": copy.deepcopy(rec["disk"]),
        "os_type": props["osType"],
        "os_state": props["osState"],
        "hyper_v_generation": props.get("hyperVGeneration", "V1"),
        "version_id": version.id,
        "size_gb": version.internal.get("size_gb"),
    }


def replica_source(ctx: Context, version_id: str, location: str) -> dict[str, Any]:
    """Another version as the source of a new one (same shape as compute's capture_source)."""
    parsed = parse(version_id)  # the caller checked it is an id
    if ctx.store.get(str(parsed)) is None:
        raise NotFound(f"Source was not found: {version_id}. Please make sure the source exists.", code="NotFound")
    found = image_source(ctx, version_id, location)
    return {**found, "location": str(location).replace(" ", "").lower()}
