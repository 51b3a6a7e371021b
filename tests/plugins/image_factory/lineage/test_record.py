"""The lineage record built from a run's task results, and its digest as version tags (pure)."""

from __future__ import annotations

import pytest

from image_factory.lineage import record
from tests.plugins.image_factory.lineage.records import (
    MARKETPLACE,
    PACKAGES,
    SCRIPTS,
    make_plan,
    make_record,
    make_stages,
    version_id,
)


def test_a_published_version_from_the_marketplace_has_no_parent_and_says_what_latest_was() -> None:
    rec = make_record("debian12-web", "1.0.3", reason="CVE-2026-1234")
    assert rec["status"] == record.PUBLISHED and rec["failed_task"] is None
    assert rec["artifact_id"] == version_id("debian12-web", "1.0.3").lower()
    assert rec["version_id"] == version_id("debian12-web", "1.0.3")  # as Azure spells it
    assert rec["parent_id"] is None
    assert rec["source"] == {"kind": "marketplace", **MARKETPLACE, "requested": "latest"}
    assert rec["run"]["reason"] == "CVE-2026-1234" and rec["run"]["trigger"] == "api"
    assert rec["scripts"] == [{"path": p, "sha256": h} for p, h in SCRIPTS]  # the seconds stay in the task's XCom
    assert rec["packages"] == sorted(PACKAGES)
    assert [(r["name"], r["replicas"], r["storage_account_type"], r["state"], r["progress"]) for r in rec["regions"]] == [
        ("westeurope", 2, "Standard_LRS", "Completed", 100), ("eastus", 1, "Standard_ZRS", "Completed", 100)]
    assert [s["region"] for s in rec["smoke"]] == ["eastus", "westeurope"]  # sorted, whatever order the map ran in
    assert [c["name"] for c in rec["smoke"][0]["checks"]] == ["boots and accepts a login", "new hostname", "nginx answers"]
    # the task's own seconds, and the report's per-stage view of the regions run side by side
    assert rec["stage_seconds"]["customise"] == 61.5 and rec["stage_seconds"]["replicate"] == 90.0
    assert rec["stage_seconds"]["smoke_test"] == 35.75


def test_a_gallery_source_is_the_parent_keyed_case_insensitively() -> None:
    parent = version_id("debian12-base", "1.0.1")
    rec = make_record("debian12-web", "1.0.3", parent=parent)
    assert rec["parent_id"] == parent.lower()
    assert rec["source"]["kind"] == "gallery_image_version" and rec["source"]["id"] == parent
    assert "publisher" not in rec["source"]
    assert record.parent_of({"id": parent + "/"}) == parent.lower()
    assert record.parent_of(MARKETPLACE) is None


def test_a_failed_build_is_keyed_by_its_planned_version_and_says_where_it_stopped() -> None:
    rec = make_record("debian12-web", "1.0.4", failed_task="customise")
    assert rec["status"] == record.FAILED and rec["failed_task"] == "customise"
    assert rec["artifact_id"] == version_id("debian12-web", "1.0.4").lower()  # no capture: the planned id
    assert rec["packages"] == [] and rec["scripts"] == [] and rec["smoke"] == []
    assert {r["state"] for r in rec["regions"]} == {"NotReplicated"} and {r["progress"] for r in rec["regions"]} == {0}
    assert set(rec["stage_seconds"]) == {"check_changes"}


def test_a_version_that_failed_a_smoke_test_is_failed_even_though_it_was_captured() -> None:
    rec = make_record("debian12-web", "1.0.5", smoke_failures=["eastus"])
    assert rec["status"] == record.FAILED and rec["failed_task"] == "promote"
    assert {s["region"]: s["passed"] for s in rec["smoke"]} == {"eastus": False, "westeurope": True}
    # promoted, but a later task failed: not published either
    plan = make_plan("debian12-web", "1.0.6")
    stages = make_stages(plan)
    late = record.build(plan, stages, image={}, run={"dag_id": "d", "run_id": "r", "trigger": "api"},
                        git_commit="c", failed_task="report", recorded_at="2026-11-20T10:30:00+00:00")
    assert late["status"] == record.FAILED


def test_smoke_results_are_shaped_and_junk_dropped() -> None:
    plan = make_plan("debian12-web", "1.0.3")
    stages = make_stages(plan)
    stages["smoke_test"] = [*stages["smoke_test"], None, "lost", {"passed": True},
                            {"region": "northeurope", "passed": 1, "checks": [{"name": "x", "passed": 0, "detail": "d" * 900}]}]
    rec = record.build(plan, stages, image={}, run={"dag_id": "d", "run_id": "r", "trigger": "api"},
                       git_commit="c", failed_task=None, recorded_at="2026-11-20T10:30:00+00:00")
    assert [s["region"] for s in rec["smoke"]] == ["eastus", "northeurope", "westeurope"]
    north = rec["smoke"][1]
    assert north["passed"] is True and north["checks"][0]["passed"] is False and len(north["checks"][0]["detail"]) == 300


def test_a_managed_image_output_is_keyed_by_the_managed_image() -> None:
    plan = make_plan("win2022", "2.0.0")
    stages = make_stages(plan)
    managed = "/subscriptions/S/resourceGroups/RG-Images/providers/Microsoft.Compute/images/win2022-2.0.0"
    stages["capture"] = {"version_id": None, "managed_image_id": managed, "seconds": 3.0}
    rec = record.build(plan, stages, image={}, run={"dag_id": "d", "run_id": "r", "trigger": "api"},
                       git_commit="c", failed_task=None, recorded_at="2026-11-20T10:30:00+00:00")
    assert rec["artifact_id"] == managed.lower() and rec["managed_image_id"] == managed


@pytest.mark.parametrize(("run_type", "run_id", "triggered_by", "conf", "want"), [
    ("manual", "source_change__2026-11-20", "rest_api", None, "source-change"),
    ("manual", "manual__1", "rest_api", {"reason": "source changed: Debian 0.1 -> 0.2"}, "source-change"),
    ("manual", "fleet__2026-11-20", "rest_api", None, "fleet"),
    ("scheduled", "scheduled__1", None, None, "schedule"),
    ("SCHEDULED", "scheduled__1", None, None, "schedule"),
    ("asset_triggered", "asset__1", None, None, "asset"),
    ("dataset_triggered", "dataset__1", None, None, "asset"),
    ("backfill", "backfill__1", None, None, "backfill"),
    ("manual", "manual__1", "ui", None, "ui"),
    ("manual", "manual__1", "REST_API", None, "api"),
    ("manual", "manual__1", "cli", None, "cli"),
    ("manual", "manual__1", "operator", None, "operator"),
    ("manual", "manual__1", "test", None, "test"),
    ("manual", "manual__1", None, None, "manual"),
    ("manual", "manual__1", "something-new", {"reason": "because"}, "manual"),
])
def test_trigger_of(run_type: str, run_id: str, triggered_by: str | None, conf: dict[str, str] | None,
                    want: str) -> None:
    assert record.trigger_of(run_type, run_id, triggered_by, conf) == want


def test_tags_carry_a_digest_of_each_part_within_azure_limits() -> None:
    rec = make_record("debian12-web", "1.0.3", parent=version_id("debian12-base", "1.0.1"), triggered_by="admin")
    tags = record.tags(rec, {"image-factory-run": "manual__1"})
    assert tags["image-factory-run"] == "manual__1"  # the version's own tags are kept
    assert tags[record.TAG_STATUS] == "published"
    assert tags[record.TAG_PARENT] == "rg-golden-images/gal_golden/debian12-base/1.0.1"
    assert tags[record.TAG_TRIGGER] == "api:admin"
    assert tags[record.TAG_PACKAGES] == record.manifest_digest(reversed(PACKAGES)) and tags[record.TAG_PACKAGES][0] == "4"
    assert tags[record.TAG_SMOKE] == "eastus=pass,westeurope=pass"
    assert record.tags(make_record("debian12-base", "1.0.1"), {})[record.TAG_PARENT] == "none"

    long = {**rec, "git_commit": "x" * 400, "run": {**rec["run"], "triggered_by": "u" * 300}}
    fitted = record.tags(long, {})
    assert all(len(v) <= record.MAX_TAG_VALUE for v in fitted.values())
    assert fitted[record.TAG_COMMIT] == "x" * 255 + "…"


def test_tags_stop_at_fifty() -> None:
    rec = make_record("debian12-web", "1.0.3")
    own = len(record.LINEAGE_TAGS)
    assert len(record.tags(rec, {f"t{i}": "v" for i in range(record.MAX_TAGS - own)})) == record.MAX_TAGS
    # a lineage tag already present is replaced, not added
    assert len(record.tags(rec, {record.TAG_STATUS: "failed", **{f"t{i}": "v" for i in range(record.MAX_TAGS - own)}})) == 50
    with pytest.raises(ValueError, match="at most 50 tags; the lineage tags would make 51"):
        record.tags(rec, {f"t{i}": "v" for i in range(record.MAX_TAGS - own + 1)})


def test_smoke_summary_falls_back_to_a_count_when_the_list_is_too_long() -> None:
    few = [{"region": "eastus", "passed": True}, {"region": "westeurope", "passed": False}]
    assert record.smoke_summary(few) == "eastus=pass,westeurope=fail"
    many = [{"region": f"region-with-a-long-name-{i:02d}", "passed": i % 10 != 0} for i in range(30)]
    assert record.smoke_summary(many) == "passed 27/30"
    assert record.smoke_summary([]) == ""


def test_manifest_digest_ignores_order_and_duplicates() -> None:
    assert record.manifest_digest(["b=1", "a=2", "b=1"]) == record.manifest_digest(["a=2", "b=1"])
    assert record.manifest_digest(["a=2", "b=1"]) != record.manifest_digest(["a=3", "b=1"])


def test_agreement_names_a_tag_that_differs_from_the_record() -> None:
    rec = make_record("debian12-web", "1.0.3", parent=version_id("debian12-base", "1.0.1"))
    tags = record.tags(rec, {"other": "kept"})
    assert record.agreement(rec, tags) == []
    changed = {**tags, record.TAG_PACKAGES: record.manifest_digest(["openssl=3.0.0"])}
    problems = record.agreement(rec, changed)
    assert len(problems) == 1 and problems[0].startswith(f"tag {record.TAG_PACKAGES}:")
    missing = {k: v for k, v in tags.items() if k != record.TAG_SMOKE}
    assert record.agreement(rec, missing) == [
        f"tag {record.TAG_SMOKE}: None but the record says 'eastus=pass,westeurope=pass'"]
