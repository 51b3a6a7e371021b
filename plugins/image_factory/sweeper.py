"""Which leftover build resource groups and staging blobs to delete, and why (pure: no Airflow, no Azure).

Every image run keeps its temporary resources in one resource group tagged by ``naming.run_tags``
(an import's staging blob, outside that group, carries the same tags as metadata); its teardown
deletes them, but a run whose worker died or whose teardown failed leaves them behind.
The rule: a group whose run is still queued or running is kept (even past its expiry: the run may
be slow, never dead); a group whose run finished is deleted; a group whose run this Airflow does
not know (another deployment sharing the subscription) is deleted only once its expiry has passed.
A group whose tags cannot be read is kept and reported, never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from image_factory.naming import PROJECT_TAG, TAG_EXPIRY, TAG_IMAGE, TAG_PROJECT, TAG_RUN, run_tags_of_blob

ALIVE_STATES = frozenset({"queued", "running"})
DELETE, KEEP = "delete", "keep"

RunStateLookup = Callable[[str, str], str | None]
"""(image, run id) → the run's state in this Airflow, or None when it knows no such run."""


@dataclass(frozen=True)
class Verdict:
    name: str  # the resource group's, or a staging blob's as account/container/blob
    action: str  # DELETE or KEEP
    reason: str
    image: str | None = None
    run_id: str | None = None
    run_state: str | None = None
    expiry: str | None = None
    unrecognised: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_candidate(tags: Mapping[str, str]) -> bool:
    """A run's group: the factory's project tag and a run id (the gallery's permanent group has no run id)."""
    return tags.get(TAG_PROJECT) == PROJECT_TAG and TAG_RUN in tags


def decide_blobs(blobs: Iterable[Mapping[str, Any]], now: datetime, run_state: RunStateLookup) -> list[Verdict]:
    """One verdict per staging blob a run labelled (``{"name", "metadata"}``), by the groups' rule; blobs
    without a run's labels (someone else's, or an upload that predates them) are left out."""
    return decide(({"name": b["name"], "tags": run_tags_of_blob(dict(b.get("metadata") or {}))} for b in blobs),
                  now, run_state)


def decide(groups: Iterable[Mapping[str, Any]], now: datetime, run_state: RunStateLookup) -> list[Verdict]:
    """One verdict per candidate group (``{"name", "tags"}``), sorted by name; other groups are left out."""
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware (the expiry tags carry a UTC offset)")
    verdicts = []
    for group in sorted(groups, key=lambda g: str(g["name"])):
        tags = dict(group.get("tags") or {})
        if is_candidate(tags):
            verdicts.append(_decide_one(str(group["name"]), tags, now, run_state))
    return verdicts


def _decide_one(name: str, tags: dict[str, str], now: datetime, run_state: RunStateLookup) -> Verdict:
    image, run_id, expiry_text = tags.get(TAG_IMAGE, ""), tags.get(TAG_RUN, ""), tags.get(TAG_EXPIRY, "")
    problem = _unreadable(image, run_id, expiry_text)
    if problem:
        return Verdict(name, KEEP, f"unrecognised: {problem}", image=image or None, run_id=run_id or None,
                       expiry=expiry_text or None, unrecognised=True)
    expiry = datetime.fromisoformat(expiry_text)

    def verdict(action: str, reason: str, state: str | None = None) -> Verdict:
        return Verdict(name, action, reason, image=image, run_id=run_id, run_state=state, expiry=expiry_text)

    state = run_state(image, run_id)
    if state is None:
        if now >= expiry:
            return verdict(DELETE, f"run not known to this Airflow; expired {_span(now - expiry)} ago")
        return verdict(KEEP, f"run not known to this Airflow; expires in {_span(expiry - now)}")
    if state in ALIVE_STATES:
        late = f"; past its expiry by {_span(now - expiry)}" if now >= expiry else ""
        return verdict(KEEP, f"run {state} (alive){late}", state)
    return verdict(DELETE, f"run {state} (finished)", state)


def _unreadable(image: str, run_id: str, expiry: str) -> str | None:
    """What makes the tags unusable, naming the tag and the rule; None when they can be read."""
    if not run_id.strip():
        return f"tag {TAG_RUN}: must not be empty"
    if not image.strip():
        return f"tag {TAG_IMAGE}: missing (needed to find the run's DAG)"
    if not expiry:
        return f"tag {TAG_EXPIRY}: missing"
    try:
        parsed = datetime.fromisoformat(expiry)
    except ValueError:
        return f"tag {TAG_EXPIRY}: {expiry!r} is not an ISO 8601 time"
    if parsed.tzinfo is None:
        return f"tag {TAG_EXPIRY}: {expiry!r} has no UTC offset"
    return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def outcome(verdicts: Iterable[Mapping[str, Any]], still_there: Iterable[str], *, key: str = "group",
            changed: Iterable[str] = ()) -> dict[str, list[dict[str, str]]]:
    """What the sweep did: removed, kept (with why) and meant for deletion but still there.

    ``key``: what a row calls the name ("group", "blob"). ``changed``: meant for deletion but changed
    since the sweep read it (a blob a new run took up), so kept: deleted only as it was when judged.
    """
    left, moved = set(still_there), set(changed)
    result: dict[str, list[dict[str, str]]] = {"removed": [], "kept": [], "not_removed": []}
    for v in verdicts:
        name = str(v["name"])
        row = {key: name, "run_id": str(v.get("run_id") or ""), "reason": str(v["reason"])}
        if v["action"] == KEEP:
            result["kept"].append(row)
        elif name in moved:
            result["kept"].append({**row, "reason": f"{row['reason']}; changed since it was judged (taken up again)"})
        elif name in left:
            result["not_removed"].append({**row, "reason": f"{row['reason']}; its deletion did not finish"})
        else:
            result["removed"].append(row)
    return result


def table(result: Mapping[str, list[dict[str, str]]], *, key: str = "group", title: str = "Build resource groups",
          column: str = "resource group") -> str:
    """The outcome as a fixed-width table for the task log."""
    labels = {"removed": "removed", "not_removed": "NOT REMOVED", "kept": "kept"}
    rows = [(labels[kind], r[key], r["run_id"] or "-", r["reason"])
            for kind in ("removed", "not_removed", "kept") for r in result.get(kind, [])]
    head = (f"{title}: {len(result.get('removed', []))} removed, "
            f"{len(result.get('not_removed', []))} not removed, {len(result.get('kept', []))} kept")
    if not rows:
        return head
    header = ("outcome", column, "run id", "why")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [head, *("  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
                     for r in [header, *rows])]
    return "\n".join(lines)
