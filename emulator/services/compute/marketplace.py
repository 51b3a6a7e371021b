"""The local Marketplace catalogue: publisher/offer/sku/version entries mapped to guest base disks.

The catalogue is data (``catalogue.json``); more files can be added with ``LOCAL_AZURE_CATALOGUE``
(paths separated by ``os.pathsep``) or in code with ``register_provider``, so other guest
runtimes (QEMU) can contribute entries whose versions carry their own disk descriptors.
Names compare case-insensitively, as in Azure; versions sort numerically, so ``latest`` is the
highest ``Major.Minor.Patch``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.core.errors import ArmError, NotFound

DEFAULT_FILE = Path(__file__).with_name("catalogue.json")
ENV_FILES = "LOCAL_AZURE_CATALOGUE"

Provider = Callable[[], list[dict[str, Any]]]
_PROVIDERS: list[Provider] = []
_CACHE: list[Entry] | None = None


@dataclass
class Version:
    name: str
    os_version: str | None = None
    disk: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[int, ...]:
        return version_key(self.name)


@dataclass
class Entry:
    """One Marketplace SKU and its versions."""

    publisher: str
    offer: str
    sku: str
    os_type: str
    hyper_v_generation: str = "V1"
    architecture: str = "x64"
    size_gb: int = 30
    os_name: str | None = None
    guest_image: str | None = None
    disk: dict[str, Any] | None = None
    versions: list[Version] = field(default_factory=list)
    unavailable: str | None = None  # why the entry has no versions now (answered as 409 on use)

    def matches(self, publisher: str, offer: str | None = None, sku: str | None = None) -> bool:
        return (
            self.publisher.lower() == publisher.lower()
            and (offer is None or self.offer.lower() == offer.lower())
            and (sku is None or self.sku.lower() == sku.lower())
        )

    def latest(self) -> Version:
        return max(self.versions, key=lambda v: v.key)

    def version(self, name: str) -> Version | None:
        if name.lower() == "latest":
            return self.latest() if self.versions else None
        return next((v for v in self.versions if v.name.lower() == name.lower()), None)


def version_key(name: str) -> tuple[int, ...]:
    """``0.20250113.1997`` → (0, 20250113, 1997); non-numeric parts sort first."""
    out = []
    for part in name.split("."):
        out.append(int(part) if part.isdigit() else -1)
    return tuple(out)


def _entry(raw: dict[str, Any]) -> Entry:
    try:
        versions = [
            Version(v) if isinstance(v, str) else Version(str(v["version"]), v.get("osVersion"), v.get("disk"))
            for v in raw.get("versions", [])
        ]
        return Entry(
            publisher=str(raw["publisher"]),
            offer=str(raw["offer"]),
            sku=str(raw["sku"]),
            os_type=str(raw["osType"]),
            hyper_v_generation=str(raw.get("hyperVGeneration", "V1")),
            architecture=str(raw.get("architecture", "x64")),
            size_gb=int(raw.get("diskSizeGB", 30)),
            os_name=raw.get("osName"),
            guest_image=raw.get("guestImage"),
            disk=raw.get("disk"),
            versions=versions,
            unavailable=raw.get("unavailable"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid catalogue entry {raw!r}: {exc}") from exc


def load_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    entries = data.get("entries", []) if isinstance(data, dict) else data
    return list(entries)


def register_provider(provider: Provider) -> None:
    """Add a source of catalogue entries (raw dicts in the ``catalogue.json`` format)."""
    _PROVIDERS.append(provider)
    reset_cache()


def unregister_provider(provider: Provider) -> None:
    if provider in _PROVIDERS:
        _PROVIDERS.remove(provider)
    reset_cache()


def reset_cache() -> None:
    global _CACHE
    _CACHE = None


def load_catalogue(paths: list[str | os.PathLike[str]] | None = None) -> list[Entry]:
    """Every entry from the default file, ``LOCAL_AZURE_CATALOGUE`` files and registered providers.

    A later entry with the same publisher/offer/sku adds its versions to the earlier one, or
    takes its place if it says ``"replace": true`` (a runtime serving that SKU itself).
    """
    raws: list[dict[str, Any]] = []
    files: list[str | os.PathLike[str]] = list(paths) if paths is not None else [DEFAULT_FILE]
    if paths is None:
        files += [p for p in os.environ.get(ENV_FILES, "").split(os.pathsep) if p]
    for path in files:
        raws.extend(load_file(path))
    for provider in _PROVIDERS:
        raws.extend(provider())
    merged: list[Entry] = []
    for raw in raws:
        entry = _entry(raw)
        same = next((e for e in merged if e.matches(entry.publisher, entry.offer, entry.sku)), None)
        if same is None:
            merged.append(entry)
        elif raw.get("replace"):
            merged[merged.index(same)] = entry
        else:
            known = {v.name.lower() for v in same.versions}
            same.versions.extend(v for v in entry.versions if v.name.lower() not in known)
    return merged


def catalogue() -> list[Entry]:
    global _CACHE
    if _CACHE is None:
        _CACHE = load_catalogue()
    return _CACHE


# lookups -----------------------------------------------------------------------------
def artifact_not_found() -> NotFound:
    return NotFound("Artifact: VMImage was not found.", code="NotFound")


def publishers() -> list[str]:
    return list(dict.fromkeys(e.publisher for e in catalogue()))


def offers(publisher: str) -> list[str]:
    found = [e.offer for e in catalogue() if e.matches(publisher)]
    if not found:
        raise artifact_not_found()
    return list(dict.fromkeys(found))


def skus(publisher: str, offer: str) -> list[Entry]:
    found = [e for e in catalogue() if e.matches(publisher, offer)]
    if not found:
        raise artifact_not_found()
    return found


def find(publisher: str, offer: str, sku: str) -> Entry | None:
    return next((e for e in catalogue() if e.matches(publisher, offer, sku)), None)


def entry(publisher: str, offer: str, sku: str) -> Entry:
    found = find(publisher, offer, sku)
    if found is None:
        raise artifact_not_found()
    return found


def platform_image_not_found(publisher: str, offer: str, sku: str, version: str) -> ArmError:
    return ArmError(
        f"The platform image '{publisher}:{offer}:{sku}:{version}' is not available. Verify that all fields in "
        "the storage profile are correct. For more details about storage profile information, please refer to "
        "https://aka.ms/storageprofile",
        code="PlatformImageNotFound",
        status=404,
        target="imageReference",
    )


def resolve(publisher: str, offer: str, sku: str, version: str) -> tuple[Entry, Version]:
    """The entry and concrete version an imageReference names; ``latest`` is the highest version."""
    found = find(publisher, offer, sku)
    picked = found.version(version) if found is not None else None
    if found is not None and picked is None and found.unavailable:
        raise ArmError(found.unavailable, code="ImageNotReady", status=409, target="imageReference")
    if found is None or picked is None:
        raise platform_image_not_found(publisher, offer, sku, version)
    return found, picked


def image_id(subscription: str, location: str, e: Entry, version: str | None = None) -> str:
    """Azure's (capitalised) id of a platform image, down to the sku or a version."""
    out = (
        f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{e.publisher}"
        f"/ArtifactTypes/VMImage/Offers/{e.offer}/Skus/{e.sku}"
    )
    return out + (f"/Versions/{version}" if version else "")


def base_disk(e: Entry, v: Version) -> dict[str, Any]:
    """The OS disk a VM from this version boots: the version's or entry's own, else the guest runtime's."""
    if v.disk is not None:
        return dict(v.disk)
    if e.disk is not None:
        return dict(e.disk)
    from emulator.services.compute import runtime

    return runtime.base_disk(e.os_type, e.guest_image or f"{e.publisher}:{e.offer}:{e.sku}", v.name)


def source(subscription: str, location: str, ref: dict[str, Any]) -> dict[str, Any]:
    """What a VM needs from a Marketplace imageReference (``image_source`` shape plus Marketplace facts)."""
    e, v = resolve(str(ref.get("publisher") or ""), str(ref.get("offer") or ""), str(ref.get("sku") or ""),
                   str(ref.get("version") or "latest"))
    return {
        "disk": base_disk(e, v),
        "os_type": e.os_type,
        "os_state": "Generalized",
        "hyper_v_generation": e.hyper_v_generation,
        "version_id": image_id(subscription, location, e, v.name),
        "exact_version": v.name,
        "size_gb": e.size_gb,
        "os_name": e.os_name,
        "os_version": v.os_version,
        "location": location,
    }


# wire shapes ---------------------------------------------------------------------------
def _resource(rid: str, name: str, location: str, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "name": name, "location": location, **extra}


def publisher_items(subscription: str, location: str) -> list[dict[str, Any]]:
    base = f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers"
    return [_resource(f"{base}/{p}", p, location) for p in publishers()]


def offer_items(subscription: str, location: str, publisher: str) -> list[dict[str, Any]]:
    names = offers(publisher)
    pub = next(e.publisher for e in catalogue() if e.matches(publisher))
    base = f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{pub}"
    return [_resource(f"{base}/ArtifactTypes/VMImage/Offers/{o}", o, location) for o in names]


def sku_items(subscription: str, location: str, publisher: str, offer: str) -> list[dict[str, Any]]:
    return [
        _resource(image_id(subscription, location, e), e.sku, location,
                  properties={"automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False}})
        for e in skus(publisher, offer)
    ]


def version_items(subscription: str, location: str, publisher: str, offer: str, sku: str, *,
                  top: int | None = None, orderby: str | None = None, expand: bool = False) -> list[dict[str, Any]]:
    e = entry(publisher, offer, sku)
    versions = sorted(e.versions, key=lambda v: v.key)
    if orderby and orderby.strip().lower().endswith("desc"):
        versions.reverse()
    if top is not None:
        versions = versions[:top]
    if expand:
        return [version_body(subscription, location, e, v) for v in versions]
    return [_resource(image_id(subscription, location, e, v.name), v.name, location) for v in versions]


def version_body(subscription: str, location: str, e: Entry, v: Version) -> dict[str, Any]:
    """``virtual_machine_images.get``: the VirtualMachineImage of one version."""
    security = "TrustedLaunchSupported" if e.hyper_v_generation == "V2" else "Standard"
    return _resource(
        image_id(subscription, location, e, v.name), v.name, location,
        properties={
            "hyperVGeneration": e.hyper_v_generation,
            "architecture": e.architecture,
            "replicaType": "Unmanaged",
            "disallowed": {"vmDiskType": "Unmanaged"},
            "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
            "imageDeprecationStatus": {"imageState": "Active"},
            "features": [
                {"name": "SecurityType", "value": security},
                {"name": "IsAcceleratedNetworkSupported", "value": "True"},
                {"name": "DiskControllerTypes", "value": "SCSI, NVMe"},
                {"name": "IsHibernateSupported", "value": "True"},
            ],
            "osDiskImage": {"operatingSystem": e.os_type, "sizeInGb": e.size_gb},
            "dataDiskImages": [],
        },
    )


def get_version(subscription: str, location: str, publisher: str, offer: str, sku: str, version: str) -> dict[str, Any]:
    e = entry(publisher, offer, sku)
    v = e.version(version) if version.lower() != "latest" else None
    if v is None:
        raise artifact_not_found()
    return version_body(subscription, location, e, v)
