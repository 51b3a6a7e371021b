"""Revoke a published image version: no new VM gets it, and everything built from it is flagged.

Revoking sets the version's ``excludeFromLatest`` (``latest`` moves past it) and its end-of-life date
to the revocation time (a minute after it: Azure accepts only a future date), tags it
``revoked=<time>`` and ``revoked-reason=<why>``, records it in the lineage store (which flags every
descendant) and tags each descendant version that still exists ``source-revoked=<group/gallery/
definition/version>`` of the revoked one. Builds refuse a revoked source at planning
(``pipeline/steps.py``). Revoking again changes nothing: the first revocation time is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from image_factory.lineage.record import MAX_TAG_VALUE, TAG_REVOKED, TAG_SOURCE_REVOKED
from image_factory.lineage.store import LineageStore
from image_factory.operators.base import DEFAULT_CONN_ID

TAG_REVOKED_REASON = "revoked-reason"
EOL_MARGIN = timedelta(minutes=1)  # Azure accepts only an end-of-life date in the future: now, plus a moment


class RevocationError(ValueError):
    """A revocation request that cannot be carried out as asked (names the field and the rule)."""


@dataclass(frozen=True)
class Location:
    """Where a gallery image version lives."""

    resource_group: str
    gallery: str
    definition: str
    version: str

    @property
    def ref(self) -> str:
        """``group/gallery/definition/version`` in lower case, the form of the ``lineage-parent`` tag."""
        return f"{self.resource_group}/{self.gallery}/{self.definition}/{self.version}".lower()

    @property
    def args(self) -> tuple[str, str, str, str]:
        return self.resource_group, self.gallery, self.definition, self.version


def check_reason(reason: str | None) -> str:
    """The reason, stripped; it must say something and fit in a tag value."""
    text = (reason or "").strip()
    if not text:
        raise RevocationError("reason: must not be empty (say why the version is revoked)")
    if len(text) > MAX_TAG_VALUE:
        raise RevocationError(f"reason: must have at most {MAX_TAG_VALUE} characters (a tag value's limit; "
                              f"got {len(text)})")
    return text


def location_of_record(record: dict[str, Any]) -> Location | None:
    """A lineage record's gallery version, or None when the run published no gallery version."""
    g = record.get("gallery")
    if not g or not record.get("version"):
        return None
    return Location(g["resource_group"], g["name"], g["definition"], str(record["version"]))


def location_of_id(resource_id: str) -> Location:
    parts = resource_id.strip().rstrip("/").split("/")
    lower = [p.lower() for p in parts]
    try:
        group = parts[lower.index("resourcegroups") + 1]
        gallery, definition, version = parts[lower.index("galleries") + 1], parts[lower.index("images") + 1], \
            parts[lower.index("versions") + 1]
    except (ValueError, IndexError):
        raise RevocationError(f"ref: {resource_id!r} is not a gallery image version id") from None
    return Location(group, gallery, definition, version)


def locate(ref: str, record: dict[str, Any] | None) -> Location:
    """The version named by ``ref`` (``IMAGE@VERSION`` or an ARM id): from its lineage record, its id, or the
    image definition's gallery (a version published before the lineage store existed)."""
    if record is not None and (found := location_of_record(record)):
        return found
    if ref.startswith("/"):
        return location_of_id(ref)
    image, sep, version = ref.partition("@")
    if not sep or not image or not version:
        raise RevocationError(f"ref: {ref!r} must name a version as IMAGE@VERSION or by its resource id")
    from image_factory.definitions import DefinitionError
    from image_factory.pipeline.build import load_definition

    try:
        d = load_definition(image)
    except (FileNotFoundError, DefinitionError) as exc:
        raise RevocationError(f"ref: no valid image definition {image!r} ({exc})") from None
    if not d.gallery_version:
        raise RevocationError(f"ref: image {image!r} publishes no gallery version")
    return Location(d.gallery_resource_group, d.gallery_name, d.definition, version)


def revocation_in_tags(tags: dict[str, str]) -> dict[str, str] | None:
    """``{"at", "reason"}`` when the version's tags say it is revoked."""
    if TAG_REVOKED not in tags:
        return None
    return {"at": tags[TAG_REVOKED], "reason": tags.get(TAG_REVOKED_REASON, "")}


def revoke(ref: str, reason: str, azure_conn_id: str, store: LineageStore, *,
           now: datetime | None = None) -> dict[str, Any]:
    """Revoke the version ``ref`` (``IMAGE@VERSION`` or its ARM id) and flag its descendants; the report."""
    from image_factory.hooks.gallery import GalleryHook

    why = check_reason(reason)
    record = store.find(ref)
    where = locate(ref, record)
    gallery = GalleryHook(azure_conn_id)
    details = gallery.version_details(*where.args)
    if details is None:
        raise RevocationError(f"ref: {ref} ({where.ref}) is not a version in the gallery")
    earlier = revocation_in_tags(details["tags"]) or (record or {}).get("revoked")
    when = str(earlier["at"]) if earlier else (now or datetime.now(UTC)).isoformat(timespec="seconds")
    at = datetime.fromisoformat(when)
    eol = datetime.fromisoformat(details["end_of_life"]) if details["end_of_life"] else None
    end_now = eol is None or eol > at + EOL_MARGIN
    tags = {**details["tags"], TAG_REVOKED: when, TAG_REVOKED_REASON: why}
    if tags != details["tags"] or not details["exclude_from_latest"] or end_now:
        gallery.update_version(*where.args, tags=tags, exclude_from_latest=True,
                               end_of_life=max(at, datetime.now(UTC)) + EOL_MARGIN if end_now else None)
    flagged: list[dict[str, Any]] = []
    if record is not None:
        _, flagged = store.revoke(record["artifact_id"], why, at=when)
    descendants = [_flag_descendant(gallery, d, where.ref) for d in flagged]
    return {"revoked": where.ref, "id": details["id"], "at": when, "reason": why, "recorded": record is not None,
            "descendants": descendants}


def _flag_descendant(gallery: Any, record: dict[str, Any], source_ref: str) -> dict[str, Any]:
    row = {"image": record["image"], "version": record["version"], "ref": None}
    where = location_of_record(record)
    if where is None:
        return {**row, "state": "no gallery version"}
    details = gallery.version_details(*where.args)
    if details is None:
        return {**row, "ref": where.ref, "state": "gone"}
    if details["tags"].get(TAG_SOURCE_REVOKED) == source_ref:
        return {**row, "ref": where.ref, "state": "already tagged"}
    gallery.update_version(*where.args, tags={**details["tags"], TAG_SOURCE_REVOKED: source_ref})
    return {**row, "ref": where.ref, "state": "tagged"}


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as lines for a log or a terminal."""
    lines = [f"revoked {report['revoked']} at {report['at']}: {report['reason']}"]
    if not report["recorded"]:
        lines.append("  the lineage store has no record of it: no descendants known")
    for d in report["descendants"]:
        lines.append(f"  descendant {d['image']}@{d['version']}: {d['state']}")
    return lines


def revoke_from_cli(ref: str, reason: str, *, azure_conn_id: str = DEFAULT_CONN_ID,
                    store_url: str | None = None) -> dict[str, Any]:
    """For the lineage command line: revoke with the store it resolves (``hooks.lineage.lineage_store``)."""
    from image_factory.hooks.lineage import lineage_store

    return revoke(ref, reason, azure_conn_id, lineage_store(store_url))
