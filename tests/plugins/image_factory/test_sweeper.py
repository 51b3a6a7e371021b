"""The sweeper's rule: delete what finished or unknown-and-expired runs left, keep the rest and say why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from image_factory.naming import run_blob_metadata, run_tags
from image_factory.sweeper import DELETE, KEEP, decide, decide_blobs, outcome, table

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=12)


def group(name: str, run_id: str, created: datetime, changes: dict[str, str | None] | None = None) -> dict:
    """A run's group as list_resource_groups gives it; ``changes``: tag → new value, or None to drop it."""
    tags = run_tags("debian12-web", run_id, created, TTL)
    for key, value in (changes or {}).items():
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value
    return {"name": name, "location": "westeurope", "tags": tags}


STATES = {("debian12-web", "run-running"): "running", ("debian12-web", "run-queued"): "queued",
          ("debian12-web", "run-failed"): "failed", ("debian12-web", "run-success"): "success"}


def lookup(image: str, run_id: str) -> str | None:
    return STATES.get((image, run_id))


def one(g: dict) -> tuple[str, str]:
    [v] = decide([g], NOW, lookup)
    assert v.name == g["name"]
    return v.action, v.reason


def test_a_queued_or_running_run_keeps_its_group_and_says_when_it_is_past_expiry() -> None:
    assert one(group("rg-a", "run-running", NOW - timedelta(hours=1))) == (KEEP, "run running (alive)")
    assert one(group("rg-b", "run-queued", NOW - timedelta(hours=1))) == (KEEP, "run queued (alive)")
    action, reason = one(group("rg-c", "run-running", NOW - timedelta(hours=14, minutes=30)))
    assert action == KEEP and reason == "run running (alive); past its expiry by 2 h 30 min"


@pytest.mark.parametrize("run_id, state", [("run-failed", "failed"), ("run-success", "success")])
def test_a_finished_run_has_its_group_deleted_even_before_expiry(run_id: str, state: str) -> None:
    assert one(group("rg-a", run_id, NOW - timedelta(minutes=5))) == (DELETE, f"run {state} (finished)")


def test_a_run_this_airflow_does_not_know_is_deleted_only_once_expired() -> None:
    expired = group("rg-old", "elsewhere-1", NOW - TTL - timedelta(minutes=45))
    assert one(expired) == (DELETE, "run not known to this Airflow; expired 45 min ago")
    fresh = group("rg-new", "elsewhere-2", NOW - timedelta(hours=2))
    assert one(fresh) == (KEEP, "run not known to this Airflow; expires in 10 h 00 min")
    on_the_dot = group("rg-dot", "elsewhere-3", NOW - TTL)
    assert one(on_the_dot)[0] == DELETE


@pytest.mark.parametrize("changes, problem", [
    ({"expiry": None}, "tag expiry: missing"),
    ({"expiry": "tomorrow"}, "tag expiry: 'tomorrow' is not an ISO 8601 time"),
    ({"expiry": "2026-03-01T00:00:00"}, "tag expiry: '2026-03-01T00:00:00' has no UTC offset"),
    ({"run-id": ""}, "tag run-id: must not be empty"),
    ({"image": None}, "tag image: missing (needed to find the run's DAG)"),
])
def test_unreadable_tags_keep_the_group_and_report_it_unrecognised(changes: dict, problem: str) -> None:
    # the run is finished and long expired: only the unreadable tag keeps the group
    g = group("rg-odd", "run-failed", NOW - timedelta(days=3), changes)
    [v] = decide([g], NOW, lookup)
    assert (v.action, v.reason, v.unrecognised) == (KEEP, f"unrecognised: {problem}", True)


def test_only_the_factorys_run_groups_are_candidates() -> None:
    old = NOW - timedelta(days=3)
    gallery = {"name": "rg-golden-images", "tags": {"project": "golden-image-factory", "image": "debian12-web"}}
    foreign = group("rg-foreign", "run-failed", old, {"project": "someone-else"})
    untagged = {"name": "rg-bare", "tags": None}
    mine = group("rg-mine", "run-failed", old)
    asked: list[tuple[str, str]] = []

    def recording(image: str, run_id: str) -> str | None:
        asked.append((image, run_id))
        return lookup(image, run_id)

    verdicts = decide([gallery, foreign, untagged, mine], NOW, recording)
    assert [v.name for v in verdicts] == ["rg-mine"]
    assert asked == [("debian12-web", "run-failed")]


def test_verdicts_carry_the_run_and_are_sorted_by_group() -> None:
    verdicts = decide([group("rg-b", "run-running", NOW), group("rg-a", "run-failed", NOW)], NOW, lookup)
    assert [v.name for v in verdicts] == ["rg-a", "rg-b"]
    assert verdicts[0].as_dict() == {"name": "rg-a", "action": DELETE, "reason": "run failed (finished)",
                                     "image": "debian12-web", "run_id": "run-failed", "run_state": "failed",
                                     "expiry": (NOW + TTL).isoformat(timespec="seconds"), "unrecognised": False}


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="now: must be timezone-aware"):
        decide([], datetime(2026, 3, 10), lookup)


def test_outcome_separates_removed_kept_and_deletions_that_did_not_finish() -> None:
    verdicts = [v.as_dict() for v in decide([
        group("rg-done", "run-failed", NOW), group("rg-stuck", "run-success", NOW),
        group("rg-live", "run-running", NOW)], NOW, lookup)]
    result = outcome(verdicts, still_there=["rg-stuck"])
    assert result == {
        "removed": [{"group": "rg-done", "run_id": "run-failed", "reason": "run failed (finished)"}],
        "kept": [{"group": "rg-live", "run_id": "run-running", "reason": "run running (alive)"}],
        "not_removed": [{"group": "rg-stuck", "run_id": "run-success",
                         "reason": "run success (finished); its deletion did not finish"}],
    }
    lines = table(result).splitlines()
    assert lines[0] == "Build resource groups: 1 removed, 1 not removed, 1 kept"
    assert lines[1].split() == ["outcome", "resource", "group", "run", "id", "why"]
    assert lines[2].split()[:3] == ["removed", "rg-done", "run-failed"] and lines[2].endswith("run failed (finished)")
    assert lines[3].startswith("  NOT REMOVED  rg-stuck") and lines[4].split()[:2] == ["kept", "rg-live"]
    assert table(outcome([], [])) == "Build resource groups: 0 removed, 0 not removed, 0 kept"


def test_staging_blobs_are_judged_by_the_run_tags_in_their_metadata() -> None:
    def blob(name: str, run_id: str, created: datetime) -> dict:
        meta = run_blob_metadata(run_tags("debian12-web", run_id, created, TTL))
        return {"name": name, "metadata": {"imagefactory_tool": "image-factory-vhd-upload-1", **meta}}

    unlabelled = {"name": "acct/vhds/debian12-web/0.9.0.vhd", "metadata": {"imagefactory_tool": "x"}}
    verdicts = decide_blobs([blob("acct/vhds/debian12-web/1.0.0.vhd", "run-failed", NOW),
                             blob("acct/vhds/debian12-web/1.1.0.vhd", "run-running", NOW - 2 * TTL),
                             blob("acct/vhds/debian12-web/1.2.0.vhd", "elsewhere", NOW - 2 * TTL),
                             unlabelled, {"name": "acct/vhds/theirs.vhd", "metadata": None}], NOW, lookup)
    assert [(v.name, v.action, v.reason) for v in verdicts] == [
        ("acct/vhds/debian12-web/1.0.0.vhd", DELETE, "run failed (finished)"),
        ("acct/vhds/debian12-web/1.1.0.vhd", KEEP, "run running (alive); past its expiry by 12 h 00 min"),
        ("acct/vhds/debian12-web/1.2.0.vhd", DELETE, "run not known to this Airflow; expired 12 h 00 min ago"),
    ]


def test_a_blob_written_since_it_was_judged_is_kept_and_the_table_names_blobs() -> None:
    verdicts = [v.as_dict() for v in decide([group("a/vhds/x/1.vhd", "run-failed", NOW),
                                             group("a/vhds/x/2.vhd", "run-success", NOW)], NOW, lookup)]
    result = outcome(verdicts, still_there=[], key="blob", changed=["a/vhds/x/2.vhd"])
    assert result["removed"] == [{"blob": "a/vhds/x/1.vhd", "run_id": "run-failed", "reason": "run failed (finished)"}]
    assert result["kept"] == [{"blob": "a/vhds/x/2.vhd", "run_id": "run-success",
                               "reason": "run success (finished); changed since it was judged (taken up again)"}]
    lines = table(result, key="blob", title="Staging blobs", column="blob").splitlines()
    assert lines[0] == "Staging blobs: 1 removed, 0 not removed, 1 kept"
    assert lines[1].split() == ["outcome", "blob", "run", "id", "why"] and "a/vhds/x/1.vhd" in lines[2]
