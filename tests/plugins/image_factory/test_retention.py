"""Retention's rules: keep N good versions, delete the old and the expired, never latest, a parent or a locked one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from image_factory.definitions import DefinitionError, parse
from image_factory.retention import (
    DELETE,
    KEEP,
    Version,
    decide,
    latest_of,
    outcome,
    settle,
    short_ref,
    table,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WEB = Path(__file__).resolve().parents[3] / "include" / "images" / "debian12-web.yaml"


def v(name: str, *, definition: str = "web", state: str = "Succeeded", excluded: bool = False,
      eol: datetime | None = None, tags: dict[str, str] | None = None) -> Version:
    return Version(ref=f"rg/gal/{definition}/{name}", name=name, provisioning_state=state, exclude_from_latest=excluded,
                   end_of_life=eol, tags=tags or {})


def verdicts(versions: list[Version], keep: int, **kw: Any) -> dict[str, tuple[str, str]]:
    return {x.version: (x.action, x.reason) for x in decide(versions, keep, NOW, **kw)}


def test_keeps_the_n_newest_good_versions_by_number_not_text() -> None:
    got = verdicts([v("1.9.0"), v("1.10.0"), v("1.2.0"), v("1.11.0")], 2)
    assert got["1.11.0"][0] == KEEP and "latest resolves to it" in got["1.11.0"][1]
    assert got["1.10.0"] == (KEEP, "one of the 2 newest good version(s)")
    assert got["1.9.0"] == (DELETE, "older than the 2 newest good version(s)")
    assert got["1.2.0"][0] == DELETE
    assert [x.version for x in decide([v("1.9.0"), v("1.10.0")], 1, NOW)] == ["1.10.0", "1.9.0"]  # newest first


def test_a_version_past_its_end_of_life_goes_even_among_the_newest() -> None:
    got = verdicts([v("1.0.2"), v("1.0.1", eol=NOW - timedelta(days=1)), v("1.0.0")], 5)
    assert got["1.0.1"][0] == DELETE and "past its end-of-life date 2026-03-09" in got["1.0.1"][1]
    assert got["1.0.0"] == (KEEP, "one of the 5 newest good version(s)")
    assert verdicts([v("1.0.1", eol=NOW + timedelta(days=1)), v("1.0.2")], 5)["1.0.1"][0] == KEEP


def test_latest_is_never_deleted_and_the_reason_says_when_it_is_past_end_of_life() -> None:
    got = verdicts([v("2.0.0", excluded=True), v("1.0.0", eol=NOW - timedelta(hours=1))], 1)
    action, reason = got["1.0.0"]
    assert action == KEEP and "latest resolves to it although it is past its end-of-life date" in reason
    # 2.0.0 is excluded from latest (never promoted): newer than any good version, so a run may still promote it
    assert got["2.0.0"] == (KEEP, "newer than the newest good version (a run may still promote it)")


def test_latest_resolves_like_azure() -> None:
    versions = [v("3.0.0", state="Creating"), v("2.0.0", excluded=True), v("1.5.0"), v("1.10.0", state="Failed")]
    found = latest_of(versions)
    assert found is not None and found.name == "1.5.0"
    assert latest_of([v("1.0.0", excluded=True)]) is None


def test_a_parent_of_a_remaining_version_is_kept_and_named() -> None:
    got = verdicts([v("1.0.2"), v("1.0.1"), v("1.0.0", eol=NOW - timedelta(days=3))], 1,
                   parents={"rg/gal/web/1.0.0": "rg/gal/app/2.0.0"})
    assert got["1.0.0"][0] == KEEP
    assert got["1.0.0"][1] == "parent of rg/gal/app/2.0.0, which remains (past its end-of-life date 2026-03-07T12:00:00+00:00)"
    assert got["1.0.1"][0] == DELETE


def test_a_version_under_another_lock_is_kept_naming_the_lock() -> None:
    got = verdicts([v("1.0.1"), v("1.0.0")], 1, locked={"rg/gal/web/1.0.0": "app-team-keep (CanNotDelete)"})
    assert got["1.0.0"] == (KEEP, "under lock app-team-keep (CanNotDelete)")


def test_versions_in_progress_are_kept_and_bad_old_ones_deleted() -> None:
    got = verdicts([v("1.0.5", state="Creating"), v("1.0.4"), v("1.0.3", state="Failed"), v("1.0.2", excluded=True),
                    v("1.0.1", tags={"revoked": "2026-03-01T00:00:00+00:00"}), v("1.0.0", state="Updating")], 3)
    assert got["1.0.5"] == (KEEP, "provisioning state Creating: still in progress")
    assert got["1.0.0"] == (KEEP, "provisioning state Updating: still in progress")
    assert got["1.0.3"] == (DELETE, "provisioning state Failed and older than the newest good version")
    assert got["1.0.2"] == (DELETE, "excluded from latest (never promoted) and older than the newest good version")
    assert got["1.0.1"] == (DELETE, "revoked and older than the newest good version")


def test_a_revoked_version_past_its_end_of_life_says_so() -> None:
    got = verdicts([v("1.0.1"), v("1.0.0", excluded=True, eol=NOW, tags={"revoked": NOW.isoformat()})], 5)
    assert got["1.0.0"] == (DELETE, f"past its end-of-life date {NOW.isoformat()} (revoked)")


def test_with_no_good_version_nothing_unexpired_is_deleted() -> None:
    got = verdicts([v("1.0.1", state="Failed"), v("1.0.0", excluded=True)], 1)
    assert {a for a, _ in got.values()} == {KEEP}


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"retention.keep: must be a whole number of at least 1 \(got 0\)"):
        decide([v("1.0.0")], 0, NOW)
    with pytest.raises(ValueError, match="now: must be timezone-aware"):
        decide([v("1.0.0")], 1, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=r"version: 'x\.y' is not Major\.Minor\.Patch"):
        decide([v("x.y")], 1, NOW)


def test_settle_keeps_parents_of_what_remains_across_definitions_to_any_depth() -> None:
    base = [v("1.0.2", definition="base"), v("1.0.1", definition="base"), v("1.0.0", definition="base")]
    mid = [v("1.0.1", definition="mid"), v("1.0.0", definition="mid")]
    app = [v("1.0.0", definition="app")]
    children = [("rg/gal/mid/1.0.0", "rg/gal/base/1.0.0"),   # mid 1.0.0 is deleted: keeps nothing by itself
                ("rg/gal/mid/1.0.1", "rg/gal/base/1.0.1"),   # mid 1.0.1 stays: base 1.0.1 stays
                ("rg/gal/app/1.0.0", "rg/gal/mid/1.0.0")]    # app stays: mid 1.0.0 stays, so base 1.0.0 too
    got = settle({"base": (base, 1), "mid": (mid, 1), "app": (app, 1)}, NOW, children=children)
    actions = {x.ref: (x.action, x.reason) for vs in got.values() for x in vs}
    assert actions["rg/gal/mid/1.0.0"] == (KEEP, "parent of rg/gal/app/1.0.0, which remains")
    assert actions["rg/gal/base/1.0.0"] == (KEEP, "parent of rg/gal/mid/1.0.0, which remains")
    assert actions["rg/gal/base/1.0.1"] == (KEEP, "parent of rg/gal/mid/1.0.1, which remains")
    # without app, mid 1.0.0 goes and so base 1.0.0 is no one's parent any more
    got = settle({"base": (base, 1), "mid": (mid, 1)}, NOW, children=children[:2])
    actions = {x.ref: (x.action, x.reason) for vs in got.values() for x in vs}
    assert actions["rg/gal/mid/1.0.0"][0] == DELETE and actions["rg/gal/base/1.0.0"][0] == DELETE
    assert actions["rg/gal/base/1.0.1"][0] == KEEP


def test_short_ref_is_the_lineage_parent_tag_form() -> None:
    rid = "/subscriptions/s/resourceGroups/RG-Golden/providers/Microsoft.Compute/galleries/Gal/images/Web/versions/1.0.0"
    assert short_ref(rid) == "rg-golden/gal/web/1.0.0"
    with pytest.raises(ValueError, match=r"resource id: .* is not a gallery image version id"):
        short_ref("/subscriptions/s/resourceGroups/rg")


def test_outcome_and_table() -> None:
    rows = [{"ref": "a", "action": DELETE, "reason": "old"}, {"ref": "b", "action": DELETE, "reason": "old"},
            {"ref": "c", "action": KEEP, "reason": "latest resolves to it"}]
    result = outcome(rows, ["a"])
    assert result == {"removed": [{"ref": "a", "reason": "old"}], "kept": [{"ref": "c", "reason": "latest resolves to it"}],
                      "not_removed": [{"ref": "b", "reason": "old; the delete did not happen"}]}
    text = table(result)
    assert text.splitlines()[0] == "Image versions: 1 removed, 1 not removed, 1 kept"
    assert "NOT REMOVED" in text and "latest resolves to it" in text


# the definition field ------------------------------------------------------------------------
@pytest.fixture
def web() -> dict[str, Any]:
    return yaml.safe_load(WEB.read_text())


def test_retention_keep_defaults_to_five_and_is_read(web: dict[str, Any]) -> None:
    assert parse(web, "images/debian12-web.yaml", stem="debian12-web").retention_keep == 5
    web["retention"] = {"keep": 2}
    assert parse(web, "images/debian12-web.yaml", stem="debian12-web").retention_keep == 2


@pytest.mark.parametrize(("retention", "field", "rule"), [
    ({"keep": 0}, "retention.keep", "must be at least 1 (got 0)"),
    ({"keep": "all"}, "retention.keep", "must be of type integer"),
    ({}, "retention.keep", "is required"),
    ({"keep": 2, "days": 3}, "retention.days", "is not a known field"),
])
def test_a_bad_retention_is_named_with_its_field_and_rule(web: dict[str, Any], retention: dict[str, Any], field: str,
                                                           rule: str) -> None:
    web["retention"] = retention
    with pytest.raises(DefinitionError) as info:
        parse(web, "images/debian12-web.yaml", stem="debian12-web")
    assert any(path == field and rule in text for path, text in info.value.problems), info.value.problems
