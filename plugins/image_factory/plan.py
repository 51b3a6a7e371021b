"""The build plan: what one run will create, decided before anything is created (pure).

``make_plan`` turns an image definition, the run's params and the facts read from Azure (the
concrete source version, the versions already in the gallery) into a small dict that travels
through XCom: names, the version, the source reference, the regions. Every later task works from
it, so a retry never recomputes (and never changes) what the run is building.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from image_factory.definition_schema import KNOWN_REGIONS
from image_factory.definitions import ImageDefinition
from image_factory.naming import FACTORY_LOCK, RunNames, staging_account_name
from image_factory.versioning import BUMPS, Existing, VersionError, next_version

PARAM_KEYS = frozenset({"version", "bump", "regions", "replicas", "source_version", "plan_only", "reason", "disk_path"})
BUILD_USER = "builder"
SMOKE_USER = "smoketest"


class PlanError(ValueError):
    """Bad run input: the message names the field and the rule."""


@dataclass(frozen=True)
class RunIdentity:
    dag_id: str
    run_id: str

    @property
    def key(self) -> str:
        """The run's identity for deriving credentials."""
        return f"{self.dag_id}/{self.run_id}"


def check_params(params: Mapping[str, Any], definition: ImageDefinition) -> dict[str, Any]:
    """Validate run params (UI form, API conf) against the definition; unknown keys are refused."""
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise PlanError(f"params: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PARAM_KEYS))}")
    out: dict[str, Any] = {}
    version = params.get("version")
    if version not in (None, ""):
        out["version"] = str(version)
    bump = params.get("bump") or "patch"
    if bump not in BUMPS:
        raise PlanError(f"params.bump: must be one of {', '.join(BUMPS)} (got {bump!r})")
    out["bump"] = bump
    regions = params.get("regions")
    if regions:
        if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
            raise PlanError("params.regions: must be a list of region names")
        unknown_regions = [r for r in regions if r not in KNOWN_REGIONS]
        if unknown_regions:
            raise PlanError(f"params.regions: unknown region(s) {', '.join(unknown_regions)}")
        if definition.gallery_version and definition.gallery_location not in regions:
            raise PlanError(f"params.regions: must include the gallery's location {definition.gallery_location!r}")
        out["regions"] = list(dict.fromkeys(regions))
    replicas = params.get("replicas")
    if replicas not in (None, ""):
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= 100:
            raise PlanError(f"params.replicas: must be a whole number from 1 to 100 (got {replicas!r})")
        out["replicas"] = replicas
    out["plan_only"] = bool(params.get("plan_only") or False)
    source_version = params.get("source_version")
    if source_version not in (None, "", "latest"):
        if definition.source.kind in ("managed_image", "disk"):
            raise PlanError(f"params.source_version: a {definition.source.kind.replace('_', ' ')} source has no "
                            "versions to pin")
        out["source_version"] = str(source_version)
    disk_path = params.get("disk_path")
    if disk_path not in (None, ""):
        if definition.source.kind != "disk":
            raise PlanError("params.disk_path: only an image imported from a disk (source.disk) takes a disk file")
        if not isinstance(disk_path, str) or len(disk_path) > 1024 or "\0" in disk_path:
            raise PlanError("params.disk_path: must be a file path of at most 1024 characters")
        out["disk_path"] = disk_path
    out["reason"] = str(params.get("reason") or "")[:500]
    return out


def target_regions(definition: ImageDefinition, chosen: Iterable[str] | None,
                   replicas: int | None = None) -> list[dict[str, Any]]:
    """The definition's regions (with replicas and storage type), narrowed or extended by the run's choice."""
    by_name = {r.name: r for r in definition.regions}
    names = list(chosen) if chosen else [r.name for r in definition.regions]
    return [
        {"name": n, "replicas": replicas or (by_name[n].replicas if n in by_name else 1),
         "storage_account_type": by_name[n].storage_account_type if n in by_name else "Standard_LRS"}
        for n in names
    ]


def source_reference(definition: ImageDefinition, resolved_version: str | None, subscription_id: str, *,
                     disk_path: str | None = None) -> dict[str, str]:
    """The imageReference the build VM boots from: always concrete (``latest`` already resolved).

    An imported disk has no imageReference: its reference is the file (``disk_path``, already resolved)."""
    source = definition.source
    if source.disk:
        return {"disk": disk_path or str(source.disk["path"]), "format": str(source.disk.get("format", "auto"))}
    if source.marketplace:
        return {"publisher": source.marketplace["publisher"], "offer": source.marketplace["offer"],
                "sku": source.marketplace["sku"], "version": resolved_version or source.marketplace.get("version", "")}
    if source.managed_image:
        return {"id": source.managed_image}
    g = source.gallery_image_version or {}
    return {"id": (f"/subscriptions/{subscription_id}/resourceGroups/{g['resource_group']}/providers/"
                   f"Microsoft.Compute/galleries/{g['gallery']}/images/{g['definition']}/versions/{resolved_version}")}


def make_plan(definition: ImageDefinition, run: RunIdentity, params: dict[str, Any], *,
              resolved_source_version: str | None, existing_versions: Iterable[Existing],
              subscription_id: str, disk_path: str | None = None) -> dict[str, Any]:
    """Everything the run will create, as primitives for XCom."""
    names = RunNames.for_run(definition.name, run.dag_id, run.run_id)
    try:
        decision = next_version(existing_versions, run_id=run.run_id, override=params.get("version"),
                                bump=params.get("bump", "patch"))
    except VersionError as exc:
        raise PlanError(str(exc)) from None
    regions = target_regions(definition, params.get("regions"), params.get("replicas"))
    plan = {
        "image": definition.name,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "digest": names.digest,
        "resource_group": names.resource_group,
        "location": definition.build_location,
        "os_type": definition.os_type,
        "os_state": definition.os_state,
        "version": decision.version,
        "version_reused": decision.reused,
        "replace_failed_version": decision.replace_failed,
        "source": source_reference(definition, resolved_source_version, subscription_id, disk_path=disk_path),
        "source_kind": definition.source.kind,
        "regions": regions,
        "build_vm": names.vm("build"),
        "build_computer_name": names.computer_name("build"),
        "build_user": BUILD_USER,
        "smoke_user": SMOKE_USER,
        "reason": params.get("reason", ""),
        "plan_only": bool(params.get("plan_only", False)),
    }
    if definition.source.disk:
        plan["staging"] = staging_of(definition, subscription_id, decision.version)
    return plan


DEFAULT_STAGING_CONTAINER = "vhds"


def staging_of(definition: ImageDefinition, subscription_id: str, version: str) -> dict[str, str]:
    """Where an imported disk's page blob goes: the definition's staging account, else the factory's own for
    this image in the gallery's group; one blob per version, so a retry resumes the same upload."""
    return {**_staging_container(definition, subscription_id), "blob": f"{staging_prefix(definition)}{version}.vhd"}


def staging_prefix(definition: ImageDefinition) -> str:
    """What the names of an image's staging blobs begin with (one blob per version under it)."""
    return f"{definition.name}/"


def _staging_container(definition: ImageDefinition, subscription_id: str) -> dict[str, str]:
    chosen = (definition.source.disk or {}).get("staging") or {}
    group = chosen.get("resource_group") or definition.gallery_resource_group
    return {"resource_group": group,
            "storage_account": chosen.get("storage_account") or staging_account_name(subscription_id, group,
                                                                                     definition.name),
            "container": chosen.get("container") or DEFAULT_STAGING_CONTAINER}


def staging_containers(definitions: Iterable[ImageDefinition], subscription_id: str) -> list[dict[str, str]]:
    """Where the imports' staging blobs are (``resource_group``, ``storage_account``, ``container``, and the
    ``prefix`` each image's blobs share): what the sweeper lists, once per place, sorted."""
    places = set()
    for d in definitions:
        if d.source.disk:
            st = _staging_container(d, subscription_id)
            places.add((st["resource_group"], st["storage_account"], st["container"], staging_prefix(d)))
    return [dict(zip(("resource_group", "storage_account", "container", "prefix"), p, strict=True))
            for p in sorted(places)]


# build hours a stage typically holds a VM for, by OS: the basis of the plan-only cost estimate
TYPICAL_BUILD_HOURS = {"Linux": 0.5, "Windows": 1.5}
TYPICAL_SMOKE_HOURS = {"Linux": 0.25, "Windows": 0.5}


def describe_plan(definition: ImageDefinition, plan: dict[str, Any]) -> dict[str, Any]:
    """What the run would create, change and cost, for a plan-only run (no ARM write happens)."""
    names = RunNames(image=plan["image"], digest=plan["digest"])
    d = definition
    rg = plan["resource_group"]
    if plan.get("staging"):
        return _describe_import(definition, plan)
    creates = [
        f"resource group {rg} ({d.build_location}), deleted at the end of the run",
        f"network in {rg}: {names.vnet}, {names.nsg} (SSH/WinRM from the worker only), {names.public_ip()}, {names.nic()}",
        f"build VM {plan['build_vm']} ({d.vm_size}) from {_describe_source(plan['source'])}",
    ]
    published, changes, smoke_regions = _publishing(d, plan)
    creates += published
    build_hours = TYPICAL_BUILD_HOURS[d.os_type]
    smoke_hours = TYPICAL_SMOKE_HOURS[d.os_type]
    return {
        "version": plan["version"],
        "creates": creates,
        "changes": changes,
        "cost": {
            "vm_hours": [{"size": d.vm_size, "count": 1, "hours_each": build_hours, "what": "build VM"},
                         {"size": d.smoke_vm_size, "count": len(smoke_regions), "hours_each": smoke_hours,
                          "what": "smoke VMs"}],
            "timeout_hours": round(d.build_timeout_minutes / 60, 2),
            "replica_count": sum(r["replicas"] for r in plan["regions"]) if d.gallery_version else 0,
            "note": "typical hours; a run never keeps a VM beyond its build timeout",
        },
    }


def _publishing(d: ImageDefinition, plan: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """What publishing creates and changes, and the smoke regions: the same for a build and an import."""
    creates = []
    if d.gallery_version:
        regions = ", ".join(f"{r['name']} x{r['replicas']} {r['storage_account_type']}" for r in plan["regions"])
        creates.append(f"gallery image version {d.gallery_name}/{d.definition}/{plan['version']} "
                       f"(excluded from latest until promoted), replicated to {regions}")
    if d.managed_image:
        creates.append(f"managed image {d.managed_image['name']}-{plan['version']} in {d.managed_image['location']}")
    smoke_regions = [r["name"] for r in plan["regions"]] if d.gallery_version else [d.build_location]
    creates += [f"smoke VM in {region} ({d.smoke_vm_size}), deleted after its checks" for region in smoke_regions]
    changes = [f"{d.gallery_name}/{d.definition}: {plan['version']} becomes the latest version "
               "if every region passes its smoke test"] if d.gallery_version else []
    changes.append(f"resource group {d.gallery_resource_group}: CanNotDelete lock {FACTORY_LOCK} (kept, or made)")
    changes += [f"{d.gallery_name}/{d.definition}: role {s.role} for {s.principal_type} {s.principal_id} "
                "(kept, or assigned)" for s in (d.sharing if d.gallery_version else ())]
    changes.append(f"lineage record of {d.name} {plan['version']} (store, version tags, OpenLineage, Assets)")
    return creates, changes, smoke_regions


def _describe_import(d: ImageDefinition, plan: dict[str, Any]) -> dict[str, Any]:
    """The plan-only preview of an import: nothing is built, a file is checked, converted and uploaded."""
    st = plan["staging"]
    creates = [
        f"nothing before the disk {plan['source']['disk']} passes its checks on the worker: format "
        f"({plan['source']['format']}), VHD footer, Hyper-V generation {d.hyper_v_generation}, OS state {d.os_state}",
        "a fixed VHD (whole MiB) converted from it in the worker's work folder, deleted at the end of the run",
        f"page blob {st['container']}/{st['blob']} in storage account {st['storage_account']} "
        f"({st['resource_group']}, kept, or made), deleted at the end of the run",
        f"resource group {plan['resource_group']} ({d.build_location}) for the smoke VMs, deleted at the end of the run",
    ]
    published, changes, smoke_regions = _publishing(d, plan)
    return {
        "version": plan["version"],
        "creates": creates + published,
        "changes": changes,
        "cost": {
            "vm_hours": [{"size": d.smoke_vm_size, "count": len(smoke_regions),
                          "hours_each": TYPICAL_SMOKE_HOURS[d.os_type], "what": "smoke VMs"}],
            "timeout_hours": round(d.build_timeout_minutes / 60, 2),
            "replica_count": sum(r["replicas"] for r in plan["regions"]) if d.gallery_version else 0,
            "note": "typical hours; uploads cost storage transactions and the blob's bytes until the run ends",
        },
    }


def _describe_source(source: dict[str, str]) -> str:
    if "id" in source:
        return source["id"]
    return f"{source['publisher']}:{source['offer']}:{source['sku']}:{source['version']}"
