"""Has anything an image is made of changed since the newest published version? (pure)

An image is made of the resolved source image, the ordered scripts and the package updates the
source's guest is offered when it is built. Every published version carries all three as tags
(``source``, ``scripts-sha256``, ``package-updates``), so a run compares with the gallery, not
with Airflow's history. A definition with ``schedule.publish_when_unchanged: false`` lets a
*scheduled* rebuild stop before customising when all three match; any other run (UI, REST API,
the source watcher) always publishes.

``package-updates`` is a digest of what ``apt-get -s dist-upgrade`` would install on a fresh VM
of the source image right after ``apt-get update``. The same digest over the same source means
the archive has nothing new for the source's packages since that version was built (whose scripts
applied what was offered then: the baseline upgrades). What it cannot see: an update of a package
only a script installs (it is not on the fresh VM).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from image_factory.definitions import Script
from image_factory.naming import TAG_VERSION_RUN
from image_factory.source_watch import newest_promoted

TAG_SOURCE, TAG_SCRIPTS, TAG_UPDATES = "source", "scripts-sha256", "package-updates"
UNKNOWN = "unknown"
SCHEDULED = "scheduled"  # DagRunType.SCHEDULED: the timetable's patch rebuild
OPTION = "schedule.publish_when_unchanged"


def source_tag(source: Mapping[str, str]) -> str:
    """The resolved source as recorded on a version: an image id, or publisher:offer:sku:version."""
    s = source
    if "disk" in s:  # an imported file: its name (the content's digest is on the lineage record)
        return f"disk:{str(s['disk']).replace(chr(92), '/').rsplit('/', 1)[-1]}"[:256]
    return (s["id"] if "id" in s else f"{s['publisher']}:{s['offer']}:{s['sku']}:{s['version']}")[:256]


def scripts_digest(scripts: Iterable[Script]) -> str:
    """SHA-256 over the scripts in run order (path and pinned content hash): 64 hex digits, any number of scripts."""
    lines = "".join(f"{s.path}\t{s.sha256}\n" for s in scripts)
    return hashlib.sha256(lines.encode()).hexdigest()


def updates_tag(upgrades: Iterable[tuple[str, str]]) -> str:
    """``<count>:<sha256>`` of the (package, version) pairs apt would install: order-free, ≤ 76 characters."""
    pairs = sorted(set(upgrades))
    lines = "".join(f"{name}\t{version}\n" for name, version in pairs)
    return f"{len(pairs)}:{hashlib.sha256(lines.encode()).hexdigest()}"


def updates_count(tag: str | None) -> int | None:
    head, sep, _ = (tag or "").partition(":")
    return int(head) if sep and head.isdigit() else None


def compare(versions: Iterable[dict[str, Any]], *, run_id: str, source: str, scripts: str) -> dict[str, Any]:
    """This run's source and scripts against the newest promoted version's tags (another run's)."""
    newest = newest_promoted(v for v in versions if v.get("tags", {}).get(TAG_VERSION_RUN) != run_id)
    if newest is None:
        return {"candidate": False, "against": None, "against_updates": None,
                "detail": "no published version to compare with"}
    name, tags = str(newest["name"]), dict(newest.get("tags") or {})
    then = tags.get(TAG_SOURCE)
    same_source = then is not None and then.lower() == source.lower()
    same_scripts = tags.get(TAG_SCRIPTS) == scripts
    if same_source and same_scripts:
        detail = f"source {source} same as version {name}, scripts unchanged"
    elif not same_source:
        detail = f"source changed: {source}, version {name} was built from {then or '(not recorded)'}"
    else:
        detail = f"scripts changed since version {name}" if TAG_SCRIPTS in tags else \
            f"version {name} has no record of its scripts"
    return {"candidate": same_source and same_scripts, "against": name, "against_updates": tags.get(TAG_UPDATES),
            "detail": detail}


def policy(publish_when_unchanged: bool, run_type: str) -> tuple[bool, str]:
    """Whether this run may skip publishing, and why (or why not)."""
    if publish_when_unchanged:
        return False, f"{OPTION} is true (the default): every rebuild publishes"
    if run_type != SCHEDULED:
        who = "a manual run (UI or REST API)" if run_type == "manual" else f"a run of type {run_type}"
        return False, f"{who} always publishes; only scheduled patch rebuilds skip when nothing changed"
    return True, f"a scheduled rebuild with {OPTION}: false publishes only what changed"


def decide(check: Mapping[str, Any], updates: str | None, unknown_because: str = "") -> dict[str, Any]:
    """Publish or not, with the reason in words; ``check`` is the plan's ``changes``, ``updates`` this guest's tag."""
    if not check.get("may_skip"):
        return {"publish": True, "reason": str(check.get("policy", ""))}
    if not check.get("candidate"):
        return {"publish": True, "reason": str(check["detail"])}
    against = check["against"]
    if updates is None or updates == UNKNOWN:
        return {"publish": True, "reason": f"{check['detail']}, but pending package updates are unknown "
                                          f"({unknown_because or 'not checked'}): publishing"}
    previous = check.get("against_updates")
    if previous is None or previous == UNKNOWN:
        return {"publish": True, "reason": f"{check['detail']}, but version {against} has no record of its "
                                          "pending package updates to compare with: publishing"}
    if previous != updates:
        return {"publish": True, "reason": f"package updates since version {against}: the guest is offered "
                                          f"{updates_count(updates)} upgrade(s) now, a different set from the "
                                          f"{updates_count(previous)} offered when {against} was built"}
    n = updates_count(updates)
    since = ("none pending in the guest" if n == 0 else
             f"the guest is offered the same {n} upgrade(s) as when {against} was built")
    return {"publish": False, "reason": f"{check['detail']}, no package updates ({since})"}
