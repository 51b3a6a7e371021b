"""The lineage store on both backends it supports: SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from image_factory.lineage.store import LineageError, LineageStore, packages, records, summarize
from tests.plugins.image_factory.lineage.records import PACKAGES, make_record, version_id

DEBIAN_NEXT = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "0.20251201.1"}
UBUNTU = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "24.04.202511200"}


def _package_rows(store: LineageStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(packages)).scalar_one())


def _generations(store: LineageStore) -> dict[str, dict]:
    """base (Marketplace) -> web -> app -> api, plus web 1.0.1 beside web 1.0.0 and an unrelated Ubuntu image."""
    recs = {
        "base": make_record("debian12-base", "1.0.0"),
        "web": make_record("debian12-web", "1.0.0", parent=version_id("debian12-base", "1.0.0")),
        "web2": make_record("debian12-web", "1.0.1", parent=version_id("debian12-base", "1.0.0")),
        "app": make_record("shop-app", "3.1.0", parent=version_id("debian12-web", "1.0.0")),
        "api": make_record("shop-api", "0.9.0", parent=version_id("shop-app", "3.1.0")),
        "ubuntu": make_record("ubuntu-base", "1.0.0", marketplace=UBUNTU),
    }
    for rec in recs.values():
        store.save(rec)
    return recs


def test_saving_the_same_run_again_replaces_its_record(store: LineageStore) -> None:
    first = make_record("debian12-web", "1.0.0")
    row = store.save(first)
    retried = make_record("debian12-web", "1.0.0", packages=[*PACKAGES, "nginx=1.22.1-9"], reason="retried")
    assert store.save(retried) == row
    assert len(store.records_of_run(first["artifact_id"])) == 1
    assert store.get("debian12-web@1.0.0")["run"]["reason"] == "retried"
    assert _package_rows(store) == len(PACKAGES) + 1  # replaced, not added to
    assert [r["artifact_id"] for r in store.containing("nginx")] == [first["artifact_id"]]


def test_the_published_record_of_a_version_wins_over_a_failed_try(store: LineageStore) -> None:
    failed = make_record("debian12-web", "1.0.0", failed_task="customise", run_id="manual__try1")
    published = make_record("debian12-web", "1.0.0", run_id="manual__try2")
    store.save(failed)
    assert store.get("debian12-web@1.0.0")["status"] == "failed"  # the only record so far
    store.save(published)
    got = store.get("debian12-web@1.0.0")
    assert got["status"] == "published" and got["run"]["run_id"] == "manual__try2"
    store.save(make_record("debian12-web", "1.0.0", failed_task="smoke_test", run_id="manual__try3"))
    assert store.get(version_id("debian12-web", "1.0.0"))["run"]["run_id"] == "manual__try2"  # still the published
    runs = store.records_of_run(version_id("debian12-web", "1.0.0"))
    assert [(r["run"]["run_id"], r["status"]) for r in runs] == [
        ("manual__try1", "failed"), ("manual__try2", "published"), ("manual__try3", "failed")]
    assert [(r["version"], r["run"]["run_id"]) for r in store.versions("debian12-web")] == [("1.0.0", "manual__try2")]


def test_versions_lists_the_current_record_of_each_version(store: LineageStore) -> None:
    recs = _generations(store)
    assert [r["artifact_id"] for r in store.versions()] == [r["artifact_id"] for r in recs.values()]
    assert [r["version"] for r in store.versions("debian12-web")] == ["1.0.0", "1.0.1"]
    assert store.versions("nothing") == []
    row = summarize(store.versions("debian12-base"))[0]
    assert row["regions"] == {"westeurope": "Completed", "eastus": "Completed"}
    assert row["smoke"] == {"eastus": True, "westeurope": True} and row["trigger"] == "api"


def test_ancestors_and_descendants_over_generations(store: LineageStore) -> None:
    recs = _generations(store)
    assert [a["artifact_id"] for a in store.ancestors("shop-api@0.9.0")] == [
        recs["app"]["artifact_id"], recs["web"]["artifact_id"], recs["base"]["artifact_id"]]
    assert store.ancestors("debian12-base@1.0.0") == []
    assert [(d["image"], d["version"], d["depth"]) for d in store.descendants("debian12-base@1.0.0")] == [
        ("debian12-web", "1.0.0", 1), ("debian12-web", "1.0.1", 1), ("shop-app", "3.1.0", 2), ("shop-api", "0.9.0", 3)]
    assert store.descendants(version_id("shop-api", "0.9.0").upper()) == []


def test_a_parent_the_store_never_recorded_ends_the_chain_as_a_stub(store: LineageStore) -> None:
    gone = version_id("legacy-base", "0.1.0")
    store.save(make_record("debian12-web", "1.0.0", parent=gone))
    store.save(make_record("shop-app", "1.0.0", parent=version_id("debian12-web", "1.0.0")))
    chain = store.ancestors("shop-app@1.0.0")
    assert [a.get("image") for a in chain] == ["debian12-web", None]
    assert chain[-1] == {"artifact_id": gone.lower(), "recorded": False}
    assert [d["image"] for d in store.descendants(gone)] == ["debian12-web", "shop-app"]  # known by its children


def test_built_from_marketplace_matches_case_insensitively_and_by_version(store: LineageStore) -> None:
    recs = _generations(store)
    store.save(make_record("debian12-base", "1.1.0", marketplace=DEBIAN_NEXT))
    both = [r["version"] for r in store.built_from_marketplace("DEBIAN", "Debian-12", "12-GEN2")]
    assert both == ["1.0.0", "1.1.0"]  # derived versions (built from a gallery parent) are not listed
    assert [r["version"] for r in store.built_from_marketplace("debian", "debian-12", "12-gen2", "0.20251201.1")] == ["1.1.0"]
    assert len(store.built_from_marketplace("debian", "debian-12", "12-gen2", "*")) == 2
    assert store.built_from_marketplace("debian", "debian-12", "12-gen2", "9.9.9") == []
    assert [r["artifact_id"] for r in store.built_from_marketplace("canonical", "ubuntu-24_04-lts", "server")] == [
        recs["ubuntu"]["artifact_id"]]


def test_package_diff(store: LineageStore) -> None:
    store.save(make_record("debian12-web", "1.0.0", packages=["bash=5.2", "curl=7.88.1", "openssl=3.0.11", "wget=1.21"]))
    store.save(make_record("debian12-web", "1.0.1", packages=["bash=5.2", "curl=7.88.2", "openssl=3.0.15", "nginx=1.22"]))
    diff = store.package_diff("debian12-web@1.0.0", "debian12-web@1.0.1")
    assert diff == {"added": [("nginx", "1.22")], "removed": [("wget", "1.21")],
                    "changed": [("curl", "7.88.1", "7.88.2"), ("openssl", "3.0.11", "3.0.15")]}
    assert store.package_diff("debian12-web@1.0.1", "debian12-web@1.0.1") == {"added": [], "removed": [], "changed": []}


def test_containing_a_package_at_any_or_one_version(store: LineageStore) -> None:
    store.save(make_record("debian12-web", "1.0.0", packages=["openssl=3.0.11", "bash=5.2"]))
    store.save(make_record("debian12-web", "1.0.1", packages=["openssl=3.0.15", "bash=5.2"]))
    store.save(make_record("ubuntu-base", "1.0.0", packages=["libssl3=3.0.13"], marketplace=UBUNTU))
    assert [r["version"] for r in store.containing("openssl")] == ["1.0.0", "1.0.1"]
    assert [r["version"] for r in store.containing("openssl", "3.0.11")] == ["1.0.0"]
    assert store.containing("openssl", "9.9") == [] and store.containing("nginx") == []


def test_revoking_a_version_flags_every_descendant(store: LineageStore) -> None:
    recs = _generations(store)
    with pytest.raises(LineageError, match="reason: a revocation must say why"):
        store.revoke("debian12-web@1.0.0", "  ")
    assert store.get("debian12-web@1.0.0")["revoked"] is None
    revoked, flagged = store.revoke("debian12-web@1.0.0", "nginx config leaks the status page",
                                    at="2026-11-21T08:00:00+00:00")
    assert revoked["revoked"] == {"at": "2026-11-21T08:00:00+00:00", "reason": "nginx config leaks the status page"}
    assert [f["image"] for f in flagged] == ["shop-app", "shop-api"]
    assert all(f["source_revoked_by"] == recs["web"]["artifact_id"] for f in flagged)
    untouched = ("debian12-base@1.0.0", "debian12-web@1.0.1", "ubuntu-base@1.0.0")
    assert all(store.get(ref)["source_revoked_by"] is None and store.get(ref)["revoked"] is None for ref in untouched)
    # revoking the grandparent later keeps the first source named, and flags the sibling
    store.revoke("debian12-base@1.0.0", "base image CVE")
    assert store.get("shop-api@0.9.0")["source_revoked_by"] == recs["web"]["artifact_id"]
    assert store.get("debian12-web@1.0.1")["source_revoked_by"] == recs["base"]["artifact_id"]
    with pytest.raises(LineageError, match="no lineage record for nope version 1"):
        store.revoke("nope@1", "why")


def test_a_deleted_version_keeps_its_record_and_its_place_in_the_chain(store: LineageStore) -> None:
    _generations(store)
    store.mark_deleted("debian12-web@1.0.0", at="2026-12-01T00:00:00+00:00")
    assert store.get("debian12-web@1.0.0")["deleted_at"] == "2026-12-01T00:00:00+00:00"
    assert store.get("debian12-web@1.0.1")["deleted_at"] is None
    assert [a["image"] for a in store.ancestors("shop-app@3.1.0")] == ["debian12-web", "debian12-base"]
    assert summarize([store.get("debian12-web@1.0.0")])[0]["deleted"] is True


def test_run_triggers_are_recorded_and_looked_up(store: LineageStore) -> None:
    assert store.trigger_of("golden_debian12-web", "manual__1") is None
    store.record_trigger("golden_debian12-web", "manual__1", triggered_by="ui", user="alice", run_type="manual")
    store.record_trigger("golden_debian12-web", "manual__1", triggered_by="rest_api", user="bob", run_type="manual")
    store.record_trigger("golden_debian12-web", "manual__2", triggered_by="cli", user=None, run_type="manual")
    seen = store.trigger_of("golden_debian12-web", "manual__1")
    assert seen is not None and (seen["triggered_by"], seen["user"], seen["run_type"]) == ("rest_api", "bob", "manual")
    assert store.trigger_of("golden_debian12-base", "manual__1") is None


def test_refs_resolve_or_fail_clearly(store: LineageStore) -> None:
    rec = make_record("debian12-web", "1.0.0")
    store.save(rec)
    assert store.resolve("debian12-web@1.0.0") == rec["artifact_id"]
    assert store.resolve("debian12-web:1.0.0") == rec["artifact_id"]
    assert store.get(version_id("debian12-web", "1.0.0").upper() + "/")["artifact_id"] == rec["artifact_id"]
    with pytest.raises(LineageError, match=r"no lineage record for debian12-web version 2\.0\.0"):
        store.get("debian12-web@2.0.0")
    with pytest.raises(LineageError, match="'debian12-web': name a version as IMAGE@VERSION or by its resource id"):
        store.get("debian12-web")
    with pytest.raises(LineageError, match="no lineage record for /subscriptions/x"):
        store.get("/subscriptions/x")
    assert store.find("debian12-web@2.0.0") is None


def test_records_are_kept_whole(store: LineageStore) -> None:
    rec = make_record("debian12-web", "1.0.0", parent=version_id("debian12-base", "1.0.0"), smoke_failures=["eastus"])
    store.save(rec)
    got = store.get("debian12-web@1.0.0")
    assert {k: v for k, v in got.items() if k not in ("revoked", "source_revoked_by", "deleted_at")} == rec
    with store.engine.connect() as conn:
        row = conn.execute(select(records.c.status, records.c.parent_id, records.c.source_publisher)).one()
    assert tuple(row) == ("failed", rec["parent_id"], None)
