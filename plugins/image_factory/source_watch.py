"""Which golden images to rebuild because their source moved on (pure).

Like Azure Image Builder's source-image trigger and EC2 Image Builder's "only when dependencies
are updated": a definition that follows ``latest`` (of a Marketplace image or of a parent golden
image) is rebuilt when ``latest`` now resolves to something other than what its newest promoted
version was built from (the version's ``source`` tag). Pinned sources never move; an image with no
promoted version yet is left to its first, deliberate build.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceState:
    image: str
    dag_id: str
    follows_latest: bool
    current_source: str | None  # what ``latest`` resolves to now (None: could not resolve)
    built_from: str | None  # the newest promoted version's source tag (None: nothing promoted yet)
    built_version: str | None = None


def newest_promoted(versions: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The version ``latest`` points at: Succeeded, not excluded, highest number."""
    eligible = [v for v in versions if v.get("provisioning_state") == "Succeeded" and not v.get("exclude_from_latest")]
    return max(eligible, key=lambda v: tuple(int(p) for p in str(v["name"]).split(".")), default=None)


def rebuilds(states: Iterable[SourceState], busy: Iterable[str] = ()) -> list[dict[str, Any]]:
    """TriggerDagRunOperator kwargs for every image whose source changed and that is not already building."""
    running = set(busy)
    out = []
    for s in states:
        if not s.follows_latest or s.current_source is None or s.built_from is None:
            continue
        if s.current_source == s.built_from or s.dag_id in running:
            continue
        out.append({"trigger_dag_id": s.dag_id,
                    "conf": {"reason": f"source changed: {s.built_version} was built from {s.built_from}; "
                                       f"latest is now {s.current_source}"[:500]}})
    return out
