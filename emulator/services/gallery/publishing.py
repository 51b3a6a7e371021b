"""An image version's publishingProfile: parsed, validated and filled with Azure's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import InvalidParameter
from emulator.core.regions import display
from emulator.services.gallery import common

P = "galleryImageVersion.properties.publishingProfile"
STORAGE_TYPES = {"standard_lrs": "Standard_LRS", "standard_zrs": "Standard_ZRS", "premium_lrs": "Premium_LRS"}
MAX_REPLICAS = 100


@dataclass
class Target:
    region: str
    replica_count: int
    storage_account_type: str
    exclude_from_latest: bool
    explicit_storage_type: bool  # the request named it (so a change is an error, not a default)


@dataclass
class Publishing:
    targets: list[Target]
    replica_count: int
    exclude_from_latest: bool
    storage_account_type: str
    explicit_storage_type: bool
    end_of_life: str | None

    def wire(self, published: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "targetRegions": [
                {"name": display(t.region), "regionalReplicaCount": t.replica_count,
                 "storageAccountType": t.storage_account_type, "excludeFromLatest": t.exclude_from_latest}
                for t in self.targets
            ],
            "replicaCount": self.replica_count,
            "excludeFromLatest": self.exclude_from_latest,
            "publishedDate": published,
            "storageAccountType": self.storage_account_type,
        }
        if self.end_of_life:
            out["endOfLifeDate"] = self.end_of_life
        return out


def _count(value: Any, target: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameter(f"The value '{value}' of parameter '{target}' is not a valid integer.", target=target)
    if not 1 <= value <= MAX_REPLICAS:
        raise InvalidParameter(
            f"The value {value} of parameter '{target}' is out of range. The value must be between 1 and "
            f"{MAX_REPLICAS}, inclusive.",
            target=target,
        )
    return value


def _flag(value: Any, target: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameter(f"The value '{value}' of parameter '{target}' is not a valid boolean.", target=target)


def _storage(value: Any, target: str) -> str:
    if not isinstance(value, str) or value.lower() not in STORAGE_TYPES:
        raise InvalidParameter(
            f"The value '{value}' of parameter '{target}' is invalid. Allowed values are: "
            f"{', '.join(STORAGE_TYPES.values())}.",
            target=target,
        )
    return STORAGE_TYPES[value.lower()]


def parse(ctx: Context, profile: Any, location: str, *, previous: Publishing | None = None) -> Publishing:
    """Validate a publishingProfile for a version in ``location``; unnamed storage types keep ``previous`` ones."""
    pp = profile if isinstance(profile, dict) else {}
    replica_count = _count(pp.get("replicaCount"), f"{P}.replicaCount", 1)
    explicit = pp.get("storageAccountType") is not None
    if explicit:
        storage = _storage(pp["storageAccountType"], f"{P}.storageAccountType")
    else:
        storage = previous.storage_account_type if previous else "Standard_LRS"
    before = {t.region: t for t in previous.targets} if previous else {}
    raw_targets = pp.get("targetRegions")
    if raw_targets is None:
        raw_targets = [{"name": location}]
    if not isinstance(raw_targets, list) or not raw_targets:
        raise InvalidParameter(f"The value of parameter '{P}.targetRegions' is invalid.", target=f"{P}.targetRegions")
    targets: list[Target] = []
    for raw in raw_targets:
        entry = raw if isinstance(raw, dict) else {"name": raw}
        region = common.location_of(entry.get("name"), f"{P}.targetRegions.name")
        if any(t.region == region for t in targets):
            raise InvalidParameter("Duplicate regions are not allowed in target publishing regions.",
                                   target=f"{P}.targetRegions")
        named = entry.get("storageAccountType") is not None
        if named:
            regional_storage = _storage(entry["storageAccountType"], f"{P}.targetRegions.storageAccountType")
        elif region in before:
            regional_storage = before[region].storage_account_type
        else:
            regional_storage = storage
        targets.append(Target(
            region=region,
            replica_count=_count(entry.get("regionalReplicaCount"), f"{P}.targetRegions.regionalReplicaCount",
                                 replica_count),
            storage_account_type=regional_storage,
            exclude_from_latest=_flag(entry.get("excludeFromLatest"), f"{P}.targetRegions.excludeFromLatest"),
            explicit_storage_type=named,
        ))
    if location not in [t.region for t in targets]:
        names = ",".join(str(r.get("name") if isinstance(r, dict) else r) for r in raw_targets)
        raise InvalidParameter(
            f"Gallery image version publishing profile regions '{names}' must contain the location of image version "
            f"'{location}'.",
            target=f"{P}.targetRegions",
        )
    return Publishing(
        targets=targets,
        replica_count=replica_count,
        exclude_from_latest=_flag(pp.get("excludeFromLatest"), f"{P}.excludeFromLatest"),
        storage_account_type=storage,
        explicit_storage_type=explicit,
        end_of_life=common.end_of_life(ctx, pp.get("endOfLifeDate"), previous.end_of_life if previous else None,
                                       f"{P}.endOfLifeDate"),
    )


def from_wire(ctx: Context, wire: dict[str, Any], location: str) -> Publishing:
    """Back from what we stored (trusted: every value was validated when it was written)."""
    pub = parse(ctx, {k: v for k, v in wire.items() if k != "endOfLifeDate"}, location)
    pub.end_of_life = wire.get("endOfLifeDate")
    return pub


def immutable_changes(new: Publishing, old: Publishing) -> None:
    """Storage account types are fixed once a region holds a replica."""
    if new.explicit_storage_type and new.storage_account_type != old.storage_account_type:
        raise common.property_change(f"{P}.storageAccountType")
    before = {t.region: t for t in old.targets}
    for t in new.targets:
        if t.explicit_storage_type and t.region in before and before[t.region].storage_account_type != t.storage_account_type:
            raise common.property_change(f"{P}.targetRegions.storageAccountType")
