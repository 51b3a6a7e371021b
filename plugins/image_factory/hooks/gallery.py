"""Azure Compute Gallery: the gallery, image definitions and the versions a run publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from image_factory.definitions import ImageDefinition
from image_factory.hooks.arm import AzureResourceManagerHook
from image_factory.hooks.lookup import get_or_none
from image_factory.naming import TAG_VERSION_RUN
from image_factory.versioning import Existing


class ImageDefinitionConflict(ValueError):
    """The gallery already has the definition with a fixed property the YAML now sets differently."""


def _text(value: Any) -> str | None:
    """An SDK enum or string as plain text."""
    return None if value is None else str(getattr(value, "value", value))


def region_key(name: str) -> str:
    """ARM's region spellings ("West Europe", "westeurope") as one key."""
    return name.replace(" ", "").lower()


class GalleryHook(AzureResourceManagerHook):
    """Galleries, definitions and versions; creates are idempotent so a retried task never publishes twice."""

    def ensure_gallery(self, resource_group: str, name: str, location: str, tags: dict[str, str]) -> str:
        existing = get_or_none(self.compute.galleries.get, resource_group, name)
        if existing is not None:
            return str(existing.id)
        from azure.mgmt.compute.models import Gallery

        poller = self.compute.galleries.begin_create_or_update(
            resource_group, name, Gallery(location=location, tags=tags), polling=self.lro()
        )
        return str(poller.result().id)

    def ensure_image_definition(self, resource_group: str, gallery: str, definition: ImageDefinition) -> str:
        """The definition's id; an existing one must agree on what Azure never lets change."""
        existing = get_or_none(self.compute.gallery_images.get, resource_group, gallery, definition.definition)
        if existing is not None:
            _check_fixed_fields(existing, definition, gallery)
            return str(existing.id)
        from azure.mgmt.compute.models import GalleryImage, GalleryImageIdentifier, GalleryImageProperties

        body = GalleryImage(
            location=definition.gallery_location,
            tags={"image": definition.name, "owner": definition.owner},
            properties=GalleryImageProperties(
                description=definition.description or None,
                os_type=definition.os_type,
                os_state=definition.os_state,
                hyper_v_generation=definition.hyper_v_generation,
                identifier=GalleryImageIdentifier(
                    publisher=definition.publisher, offer=definition.offer, sku=definition.sku
                ),
            ),
        )
        poller = self.compute.gallery_images.begin_create_or_update(
            resource_group, gallery, definition.definition, body, polling=self.lro()
        )
        return str(poller.result().id)

    def list_versions(self, resource_group: str, gallery: str, definition: str) -> list[Existing]:
        """Every version with its state and the run that made it (tag ``factory-run-id``); [] if none."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = list(self.compute.gallery_image_versions.list_by_gallery_image(resource_group, gallery, definition))
        except ResourceNotFoundError:
            return []
        return [
            Existing(
                name=str(v.name),
                provisioning_state=_text(v.provisioning_state) or "Unknown",
                run_id=(v.tags or {}).get(TAG_VERSION_RUN),
            )
            for v in found
        ]

    def published_versions(self, resource_group: str, gallery: str, definition: str) -> list[dict[str, Any]]:
        """Every version with its state, tags and whether it is excluded from ``latest``; [] if none."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = list(self.compute.gallery_image_versions.list_by_gallery_image(resource_group, gallery, definition))
        except ResourceNotFoundError:
            return []
        out = []
        for v in found:
            profile = v.publishing_profile
            out.append(
                {
                    "name": str(v.name),
                    "id": str(v.id),
                    "provisioning_state": _text(v.provisioning_state),
                    "tags": dict(v.tags or {}),
                    "exclude_from_latest": bool(profile.exclude_from_latest) if profile else False,
                }
            )
        return out

    def begin_create_version(
        self,
        resource_group: str,
        gallery: str,
        definition: str,
        version: str,
        *,
        location: str,
        source_id: str | None = None,
        vhd: tuple[str, str] | None = None,
        regions: list[dict[str, Any]],
        exclude_from_latest: bool = True,
        end_of_life: datetime | None = None,
        tags: dict[str, str],
    ) -> str:
        """Start publishing (replication goes on after this returns); an existing version is left alone.

        The source is a VM, image or version (``source_id``) or an uploaded VHD: ``vhd`` is the blob's URI and
        its storage account's id."""
        existing = get_or_none(self.compute.gallery_image_versions.get, resource_group, gallery, definition, version)
        if existing is not None:
            return str(existing.id)
        from azure.mgmt.compute import models as cm

        if (source_id is None) == (vhd is None):
            raise ValueError("begin_create_version: give exactly one of source_id and vhd")
        storage: Any
        if vhd is not None:
            storage = cm.GalleryImageVersionStorageProfile(os_disk_image=cm.GalleryOSDiskImage(
                source=cm.GalleryDiskImageSource(uri=vhd[0], storage_account_id=vhd[1])))
        elif "/providers/microsoft.compute/virtualmachines/" in str(source_id).lower():
            storage = cm.GalleryImageVersionStorageProfile(
                source=cm.GalleryArtifactVersionFullSource(virtual_machine_id=source_id))
        else:
            storage = cm.GalleryImageVersionStorageProfile(source=cm.GalleryArtifactVersionFullSource(id=source_id))
        targets = [
            cm.TargetRegion(
                name=r["name"],
                regional_replica_count=int(r.get("replicas", 1)),
                storage_account_type=r.get("storage_account_type") or "Standard_LRS",
            )
            for r in regions
        ]
        body = cm.GalleryImageVersion(
            location=location,
            tags=tags,
            properties=cm.GalleryImageVersionProperties(
                publishing_profile=cm.GalleryImageVersionPublishingProfile(
                    target_regions=targets, exclude_from_latest=exclude_from_latest, end_of_life_date=end_of_life
                ),
                storage_profile=storage,
            ),
        )
        self.compute.gallery_image_versions.begin_create_or_update(
            resource_group, gallery, definition, version, body, polling=False
        )
        return self._version_id(resource_group, gallery, definition, version)

    def version_status(self, resource_group: str, gallery: str, definition: str, version: str) -> dict[str, Any] | None:
        """``provisioning_state`` and per-region ``{"state", "progress"}`` of replication; None if absent."""
        found = get_or_none(
            self.compute.gallery_image_versions.get,
            resource_group,
            gallery,
            definition,
            version,
            expand="ReplicationStatus",
        )
        if found is None:
            return None
        summary = (found.replication_status.summary if found.replication_status else None) or []
        return {
            "provisioning_state": _text(found.provisioning_state),
            "regions": {region_key(str(s.region)): {"state": _text(s.state), "progress": s.progress} for s in summary},
        }

    def delete_version(self, resource_group: str, gallery: str, definition: str, version: str) -> bool:
        """Delete and wait; False when there was no such version (ARM answers a DELETE of nothing with 204)."""
        from azure.core.exceptions import ResourceNotFoundError

        versions = self.compute.gallery_image_versions
        if get_or_none(versions.get, resource_group, gallery, definition, version) is None:
            return False
        try:
            versions.begin_delete(resource_group, gallery, definition, version, polling=self.lro()).result()
        except ResourceNotFoundError:
            return False
        return True

    def promote(self, resource_group: str, gallery: str, definition: str, version: str) -> None:
        """Let ``latest`` resolve to this version (it was published with excludeFromLatest until checked)."""
        from azure.mgmt.compute.models import GalleryImageVersionProperties, GalleryImageVersionUpdate

        # the mapping form: a PATCH names only what changes (the typed form insists on a storage profile)
        update = GalleryImageVersionUpdate(
            properties=GalleryImageVersionProperties({"publishingProfile": {"excludeFromLatest": False}})
        )
        self.compute.gallery_image_versions.begin_update(
            resource_group, gallery, definition, version, update, polling=self.lro()
        ).result()

    def version_details(self, resource_group: str, gallery: str, definition: str, version: str) -> dict[str, Any] | None:
        """Tags, ``end_of_life`` (ISO), ``exclude_from_latest`` and state of one version; None if absent."""
        found = get_or_none(self.compute.gallery_image_versions.get, resource_group, gallery, definition, version)
        if found is None:
            return None
        profile = found.publishing_profile
        eol = profile.end_of_life_date if profile else None
        return {"id": str(found.id), "tags": dict(found.tags or {}), "provisioning_state": _text(found.provisioning_state),
                "exclude_from_latest": bool(profile.exclude_from_latest) if profile else False,
                "end_of_life": eol.isoformat() if eol else None}

    def update_version(self, resource_group: str, gallery: str, definition: str, version: str, *,
                       tags: dict[str, str] | None = None, exclude_from_latest: bool | None = None,
                       end_of_life: datetime | None = None) -> None:
        """PATCH only what is given (tags are replaced whole: pass the merged set)."""
        from azure.mgmt.compute.models import GalleryImageVersionProperties, GalleryImageVersionUpdate

        profile: dict[str, Any] = {}
        if exclude_from_latest is not None:
            profile["excludeFromLatest"] = exclude_from_latest
        if end_of_life is not None:
            profile["endOfLifeDate"] = end_of_life.isoformat()
        update = GalleryImageVersionUpdate(
            tags=tags, properties=GalleryImageVersionProperties({"publishingProfile": profile}) if profile else None)
        self.compute.gallery_image_versions.begin_update(
            resource_group, gallery, definition, version, update, polling=self.lro()
        ).result()

    def _version_id(self, resource_group: str, gallery: str, definition: str, version: str) -> str:
        """The version's id without waiting for the create to finish (ARM ids are deterministic)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
            f"galleries/{gallery}/images/{definition}/versions/{version}"
        )

    def exclude_from_latest(self, resource_group: str, gallery: str, definition: str, version: str) -> bool:
        found = self.compute.gallery_image_versions.get(resource_group, gallery, definition, version)
        profile = found.publishing_profile
        return bool(profile.exclude_from_latest) if profile is not None else False


def _check_fixed_fields(existing: Any, definition: ImageDefinition, gallery: str) -> None:
    ident = existing.identifier
    pairs = {
        "os_type": (existing.os_type, definition.os_type),
        "os_state": (existing.os_state, definition.os_state),
        "hyper_v_generation": (existing.hyper_v_generation or "V1", definition.hyper_v_generation),
        "publisher": (ident.publisher if ident else None, definition.publisher),
        "offer": (ident.offer if ident else None, definition.offer),
        "sku": (ident.sku if ident else None, definition.sku),
    }
    for field, (actual, wanted) in pairs.items():
        if (_text(actual) or "").lower() != wanted.lower():
            raise ImageDefinitionConflict(
                f"Gallery image definition {gallery}/{definition.definition} already exists with {field} "
                f"{_text(actual)!r}, but the image definition sets {field} {wanted!r}; Azure cannot change it: "
                "use a new definition name or change the field back."
            )
