"""One image version's lineage record, built from what the run's tasks returned (pure).

The record answers: what was the version built from, by which run and trigger, with which
scripts and packages, where does it live, and did it pass its smoke tests. It is kept in three
places that must agree: the lineage store (the whole record), tags on the gallery image version
(a digest of each part, within Azure's tag limits) and OpenLineage events. ``agreement`` is the
check that they do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

SCHEMA = 1
PUBLISHED, FAILED = "published", "failed"

# Azure: at most 50 tags per resource, names ≤ 512 and values ≤ 256 characters.
MAX_TAGS, MAX_TAG_VALUE = 50, 256
TAG_STATUS, TAG_PARENT, TAG_TRIGGER = "lineage-status", "lineage-parent", "lineage-trigger"
TAG_COMMIT, TAG_PACKAGES, TAG_SMOKE = "lineage-git-commit", "lineage-packages", "lineage-smoke"
TAG_REVOKED, TAG_SOURCE_REVOKED = "revoked", "source-revoked"
LINEAGE_TAGS = (TAG_STATUS, TAG_PARENT, TAG_TRIGGER, TAG_COMMIT, TAG_PACKAGES, TAG_SMOKE)


def artifact_id(resource_id: str) -> str:
    """ARM ids are case-insensitive: the store keys them lower-cased, without a trailing slash."""
    return resource_id.strip().rstrip("/").lower()


def trigger_of(run_type: str, run_id: str, triggered_by: str | None = None, conf: Mapping[str, Any] | None = None) -> str:
    """ui, api, schedule, source-change, fleet, asset, backfill, cli or manual (a manual run whose channel is unknown)."""
    if run_id.startswith("source_change__") or str((conf or {}).get("reason", "")).startswith("source changed:"):
        return "source-change"
    if run_id.startswith("fleet__"):
        return "fleet"
    kind = run_type.lower()
    if kind == "scheduled":
        return "schedule"
    if kind in ("asset_triggered", "dataset_triggered"):
        return "asset"
    if kind == "backfill":
        return "backfill"
    channel = (triggered_by or "").lower()
    return {"ui": "ui", "rest_api": "api", "cli": "cli", "operator": "operator", "test": "test"}.get(channel, "manual")


def parent_of(source: Mapping[str, str]) -> str | None:
    """A gallery image version or managed image source is this version's parent; a Marketplace image is not."""
    return artifact_id(source["id"]) if source.get("id") else None


def manifest_digest(packages: Iterable[str]) -> str:
    """``<count>:<sha256>`` of the sorted ``name=version`` lines: the tag says which manifest the store holds."""
    lines = sorted(set(packages))
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    return f"{len(lines)}:{digest}"


def _smoke(stages: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in stages.get("smoke_test") or []:
        if isinstance(s, dict) and s.get("region"):
            out.append({"region": s["region"], "passed": bool(s.get("passed")),
                        "checks": [{"name": c.get("name", ""), "passed": bool(c.get("passed")),
                                    "detail": str(c.get("detail", ""))[:300]} for c in s.get("checks") or []]})
    return sorted(out, key=lambda s: s["region"])


def _regions(plan: Mapping[str, Any], stages: Mapping[str, Any]) -> list[dict[str, Any]]:
    seen = ((stages.get("replicate") or {}).get("regions") or {})
    out = []
    for r in plan.get("regions") or []:
        state = seen.get(r["name"]) or {}
        out.append({"name": r["name"], "replicas": r.get("replicas"), "storage_account_type": r.get("storage_account_type"),
                    "state": state.get("state") or "NotReplicated", "progress": state.get("progress", 0)})
    return out


def imported_source(stages: Mapping[str, Any]) -> dict[str, Any]:
    """What an import's tasks found out about its disk file: the record's source beside the file's path."""
    prepared, inspected = stages.get("prepare_disk") or {}, stages.get("inspect_disk") or {}
    facts = {"detected_format": prepared.get("source_format"), "virtual_size": prepared.get("virtual_size"),
             "converted": prepared.get("converted"), "vhd_sha256": (stages.get("upload") or {}).get("sha256"),
             "host": inspected.get("host"), "os_release": (inspected.get("os_release") or {}).get("PRETTY_NAME")}
    return {k: v for k, v in facts.items() if v is not None}


def source_label(source: Mapping[str, Any]) -> str:
    """One line naming a record's source: a Marketplace URN, an imported file, or an image id."""
    if source.get("publisher"):
        return ":".join(str(source.get(k) or "") for k in ("publisher", "offer", "sku", "version"))
    if source.get("disk"):
        digest = f", VHD sha256 {str(source['vhd_sha256'])[:12]}…" if source.get("vhd_sha256") else ""
        return f"disk {source['disk']} ({source.get('detected_format') or source.get('format') or '?'}{digest})"
    return str(source.get("id") or "—")


def describe_image(definition: Any) -> dict[str, Any]:
    """What the record needs of the image definition: where it publishes and which source version it asked for."""
    src = definition.source.marketplace or definition.source.gallery_image_version or {}
    return {"gallery": ({"resource_group": definition.gallery_resource_group, "name": definition.gallery_name,
                         "definition": definition.definition} if definition.gallery_version else None),
            "os_type": definition.os_type, "os_state": definition.os_state,
            "source_requested": src.get("version", "latest") if src else None}


def build(plan: Mapping[str, Any], stages: Mapping[str, Any], *, image: Mapping[str, Any], run: Mapping[str, Any],
          git_commit: str, failed_task: str | None, recorded_at: str, end_of_life: str | None = None) -> dict[str, Any]:
    """The record of what this run published, or failed to publish (``failed_task`` says where it stopped)."""
    capture = stages.get("capture") or {}
    custom = stages.get("customise") or {}
    promoted = bool((stages.get("promote") or {}).get("version"))
    version_id = capture.get("version_id") or image.get("version_id")  # planned: failed runs are keyed the same
    managed = capture.get("managed_image_id")
    source = dict(plan["source"])
    if plan.get("source_kind") == "disk":
        source.update(imported_source(stages))
    key = artifact_id(version_id or managed or f"{plan['image']}@{plan['version']}")
    status = PUBLISHED if promoted and not failed_task else FAILED
    timings = {name: out["seconds"] for name, out in stages.items()
               if isinstance(out, dict) and isinstance(out.get("seconds"), (int, float))}
    timings.update((stages.get("report") or {}).get("stage_seconds") or {})  # replication and smoke, region by region
    return {
        "schema": SCHEMA, "artifact_id": key, "status": status, "failed_task": failed_task,
        "image": plan["image"], "version": plan["version"], "version_id": version_id, "managed_image_id": managed,
        "gallery": image.get("gallery"), "os_type": image.get("os_type"), "os_state": image.get("os_state"),
        "end_of_life": end_of_life,
        "run": {"dag_id": run["dag_id"], "run_id": run["run_id"], "trigger": run["trigger"],
                "triggered_by": run.get("triggered_by"), "run_type": run.get("run_type"),
                "reason": str(plan.get("reason") or ""), "started_at": run.get("started_at")},
        "recorded_at": recorded_at,
        "source": {"kind": plan.get("source_kind"), **source, "requested": image.get("source_requested")},
        "parent_id": parent_of(source),
        "git_commit": git_commit,
        "scripts": [{"path": s["path"], "sha256": s["sha256"]} for s in custom.get("scripts") or []],
        # a build lists its VM's packages; an import reads its disk's dpkg database
        "packages": sorted(custom.get("packages") or (stages.get("inspect_disk") or {}).get("packages") or []),
        "stage_seconds": timings,
        "regions": _regions(plan, stages),
        "smoke": _smoke(stages),
    }


def _fit(value: str) -> str:
    return value if len(value) <= MAX_TAG_VALUE else value[: MAX_TAG_VALUE - 1] + "…"


def smoke_summary(smoke: Iterable[Mapping[str, Any]]) -> str:
    """``eastus=pass,westeurope=fail`` (or ``passed 58/60`` when the list would not fit in a tag)."""
    results = list(smoke)
    listed = ",".join(f"{s['region']}={'pass' if s['passed'] else 'fail'}" for s in results)
    if len(listed) <= MAX_TAG_VALUE:
        return listed
    return f"passed {sum(1 for s in results if s['passed'])}/{len(results)}"


def parent_tag(parent_id: str | None) -> str:
    """``<group>/<gallery>/<definition>/<version>`` (or the managed image's group/name): short enough for a tag."""
    if not parent_id:
        return "none"
    parts = parent_id.split("/")
    if "versions" in parts:
        i = parts.index("resourcegroups")
        return _fit(f"{parts[i + 1]}/{parts[-5]}/{parts[-3]}/{parts[-1]}")
    return _fit(f"{parts[parts.index('resourcegroups') + 1]}/{parts[-1]}") if "resourcegroups" in parts else _fit(parent_id)


def tags(record: Mapping[str, Any], existing: Mapping[str, str]) -> dict[str, str]:
    """The version's tags with the record's digest added: every value ≤ 256 characters, at most 50 tags."""
    run = record["run"]
    added = {
        TAG_STATUS: record["status"],
        TAG_PARENT: parent_tag(record.get("parent_id")),
        TAG_TRIGGER: _fit(f"{run['trigger']}:{run.get('triggered_by') or '-'}"),
        TAG_COMMIT: _fit(record["git_commit"]),
        TAG_PACKAGES: manifest_digest(record["packages"]),
        TAG_SMOKE: _fit(smoke_summary(record["smoke"]) or "none"),
    }
    merged = {**existing, **added}
    if len(merged) > MAX_TAGS:
        raise ValueError(f"tags: a version may carry at most {MAX_TAGS} tags; the lineage tags would make {len(merged)}")
    return merged


def agreement(record: Mapping[str, Any], version_tags: Mapping[str, str]) -> list[str]:
    """Where the version's tags disagree with the stored record ([] when they agree)."""
    want = tags(record, {})
    return [f"tag {name}: {version_tags.get(name)!r} but the record says {value!r}"
            for name, value in want.items() if version_tags.get(name) != value]
