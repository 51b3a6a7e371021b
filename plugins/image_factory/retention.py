"""Which gallery image versions retention deletes, and why (pure: no Airflow, no Azure).

Rules, per image definition (``retention.keep`` = N, default 5):

* A version under a lock other than the factory's own (``naming.FACTORY_LOCK``) is kept, naming the
  lock: whoever placed it wants the version, and Azure would refuse the delete anyway.
* The version ``latest`` resolves to (the newest Succeeded version not excluded from latest, as Azure
  resolves it) is kept, also past its end-of-life date (the reason says so: publish a newer version).
* A version that is the parent of a version that remains (in any definition or gallery, known from the
  lineage store or from ``lineage-parent`` tags) is kept: its children's lineage must stay reachable.
  A child that is already deleted, or that this same pass deletes, keeps no parent (``settle``).
* Otherwise a version past its end-of-life date is deleted (a revoked version's end of life is its
  revocation time).
* A version still being provisioned (not Succeeded and not Failed) is kept: a run may be publishing it.
* The N newest (by version number) good versions are kept: good means Succeeded, not excluded from
  latest, not revoked. A version newer than the newest good one is kept (a run may still promote it).
* Everything else (older good versions beyond N, and failed, unpromoted or revoked versions older
  than the newest good one) is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from image_factory.definition_schema import DEFAULT_RETENTION_KEEP
from image_factory.lineage.record import TAG_REVOKED, artifact_id, parent_tag

DELETE, KEEP = "delete", "keep"
DEFAULT_KEEP = DEFAULT_RETENTION_KEEP
SUCCEEDED, FAILED = "Succeeded", "Failed"


@dataclass(frozen=True)
class Version:
    """One gallery image version as retention sees it; ``ref`` is ``group/gallery/definition/version`` (lower case)."""

    ref: str
    name: str
    provisioning_state: str | None = SUCCEEDED
    exclude_from_latest: bool = False
    end_of_life: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def number(self) -> tuple[int, ...]:
        return version_number(self.name)

    @property
    def revoked(self) -> bool:
        return TAG_REVOKED in self.tags

    @property
    def good(self) -> bool:
        return self.provisioning_state == SUCCEEDED and not self.exclude_from_latest and not self.revoked


@dataclass(frozen=True)
class Verdict:
    ref: str
    version: str
    action: str  # DELETE or KEEP
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_number(name: str) -> tuple[int, ...]:
    """``1.10.0`` sorts after ``1.9.0``: compare the numbers, not the text."""
    try:
        return tuple(int(p) for p in name.split("."))
    except ValueError:
        raise ValueError(f"version: {name!r} is not Major.Minor.Patch with whole numbers") from None


def short_ref(resource_id: str) -> str:
    """``group/gallery/definition/version`` of a version's ARM id, lower case (the ``lineage-parent`` tag's form)."""
    if "/versions/" not in resource_id.lower() or "/resourcegroups/" not in resource_id.lower():
        raise ValueError(f"resource id: {resource_id!r} is not a gallery image version id")
    return parent_tag(artifact_id(resource_id))


def latest_of(versions: Iterable[Version]) -> Version | None:
    """What ``latest`` resolves to in Azure: the newest Succeeded version not excluded from latest."""
    eligible = [v for v in versions if v.provisioning_state == SUCCEEDED and not v.exclude_from_latest]
    return max(eligible, key=lambda v: v.number, default=None)


def decide(versions: Iterable[Version], keep: int, now: datetime, *, parents: Mapping[str, str] | None = None,
           locked: Mapping[str, str] | None = None) -> list[Verdict]:
    """One verdict per version of one definition, newest first.

    ``parents``: ref → the ref of a remaining child (the version is its parent); ``locked``: ref → the
    name of a lock other than the factory's that covers it.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"retention.keep: must be a whole number of at least 1 (got {keep!r})")
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware (end-of-life dates carry a UTC offset)")
    parents, locked = parents or {}, locked or {}
    ordered = sorted(versions, key=lambda v: v.number, reverse=True)
    latest = latest_of(ordered)
    good = [v for v in ordered if v.good]
    kept_good = {v.ref for v in good[:keep]}
    newest_good = good[0].number if good else None
    out = []
    for v in ordered:
        expired = v.end_of_life is not None and v.end_of_life <= now
        eol = f"past its end-of-life date {v.end_of_life.isoformat()}" if expired and v.end_of_life else ""
        is_latest = latest is not None and v.ref == latest.ref
        protections = []
        if v.ref in locked:
            protections.append(f"under lock {locked[v.ref]}")
        if is_latest:
            protections.append("latest resolves to it" + (f" although it is {eol} (publish a newer version)"
                                                          if expired else ""))
        if v.ref in parents:
            protections.append(f"parent of {parents[v.ref]}, which remains")
        if protections:
            note = f" ({eol})" if expired and not is_latest else ""
            out.append(Verdict(v.ref, v.name, KEEP, "; ".join(protections) + note))
        elif expired:
            out.append(Verdict(v.ref, v.name, DELETE, eol + (" (revoked)" if v.revoked else "")))
        elif v.provisioning_state not in (SUCCEEDED, FAILED):
            out.append(Verdict(v.ref, v.name, KEEP, f"provisioning state {v.provisioning_state}: still in progress"))
        elif v.ref in kept_good:
            out.append(Verdict(v.ref, v.name, KEEP, f"one of the {keep} newest good version(s)"))
        elif newest_good is None or v.number > newest_good:
            out.append(Verdict(v.ref, v.name, KEEP, "newer than the newest good version (a run may still promote it)"))
        elif v.good:
            out.append(Verdict(v.ref, v.name, DELETE, f"older than the {keep} newest good version(s)"))
        else:
            out.append(Verdict(v.ref, v.name, DELETE, f"{_why_not_good(v)} and older than the newest good version"))
    return out


def _why_not_good(v: Version) -> str:
    if v.provisioning_state != SUCCEEDED:
        return f"provisioning state {v.provisioning_state}"
    if v.revoked:
        return "revoked"
    return "excluded from latest (never promoted)"


def settle(definitions: Mapping[str, tuple[Iterable[Version], int]], now: datetime, *,
           children: Iterable[tuple[str, str]], locked: Mapping[str, str] | None = None) -> dict[str, list[Verdict]]:
    """Verdicts for several definitions at once, so a parent is kept exactly when a child remains.

    ``definitions``: key → (versions, keep); ``children``: (child ref, parent ref) pairs of children that
    exist (already deleted ones left out). A child this pass deletes keeps no parent; keeping a parent
    can keep its own parent in turn, so the verdicts are recomputed until nothing changes (the set of
    protected parents only grows, so this ends).
    """
    pairs = sorted(set(children))
    listed = {key: (list(versions), keep) for key, (versions, keep) in definitions.items()}
    protected: dict[str, str] = {}
    while True:
        verdicts = {key: decide(versions, keep, now, parents=protected, locked=locked)
                    for key, (versions, keep) in listed.items()}
        deleting = {v.ref for vs in verdicts.values() for v in vs if v.action == DELETE}
        wanted: dict[str, str] = {}
        for child, parent in pairs:
            if child not in deleting:
                wanted.setdefault(parent, child)
        if wanted.keys() == protected.keys():
            return verdicts
        protected = wanted


def outcome(verdicts: Iterable[Mapping[str, Any]], removed: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """What the pass did: removed, kept (with why), and chosen for deletion but not removed."""
    gone = set(removed)
    result: dict[str, list[dict[str, str]]] = {"removed": [], "kept": [], "not_removed": []}
    for v in verdicts:
        row = {"ref": str(v["ref"]), "reason": str(v["reason"])}
        if v["action"] == KEEP:
            result["kept"].append(row)
        elif row["ref"] in gone:
            result["removed"].append(row)
        else:
            result["not_removed"].append({**row, "reason": f"{row['reason']}; the delete did not happen"})
    return result


def table(result: Mapping[str, list[dict[str, str]]]) -> str:
    """The outcome as a fixed-width table for the task log."""
    labels = {"removed": "removed", "not_removed": "NOT REMOVED", "kept": "kept"}
    rows = [(labels[key], r["ref"], r["reason"]) for key in ("removed", "not_removed", "kept") for r in result.get(key, [])]
    head = (f"Image versions: {len(result.get('removed', []))} removed, {len(result.get('not_removed', []))} not "
            f"removed, {len(result.get('kept', []))} kept")
    if not rows:
        return head
    header = ("outcome", "version", "why")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    return "\n".join([head, *("  " + "  ".join(c.ljust(w) for c, w in zip(r[:2], widths, strict=True)) + "  " + r[2]
                              for r in [header, *rows])])
