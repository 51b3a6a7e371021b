"""Retention and revocation on real runs (simulated guests, ``dag.test()``): three generations plus extra
versions of the first, the factory's lock lifted only while deleting, and a revoked source refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.dags.conftest import task_states, xcom
from tests.dags.generations import GALLERY, MARKETPLACE, empty_include, from_gallery, run_image, write_generation
from tests.dags.test_golden_image_runs import arm_writes, request_seq
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(1800)]

CONN = "image_factory_azure"
GEN1, GEN2, GEN3 = "ret-gen1", "ret-gen2", "ret-gen3"
APP_LOCK = "app-team-keep"


def ref(definition: str, version: str) -> str:
    return f"{GALLERY[0]}/{GALLERY[1]}/{definition}/{version}".lower()


@pytest.fixture(scope="module")
def family(factory_env: LocalAzure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """gen1 1.0.0 (Marketplace) → gen2 1.0.0 → gen3 1.0.0, then gen1 1.0.1-1.0.3; all keep one version."""
    tmp = tmp_path_factory.mktemp("retention")
    include = empty_include(tmp)
    keep_one = "retention: {keep: 1}\n"
    write_generation(include, GEN1, MARKETPLACE, keep_one)
    write_generation(include, GEN2, from_gallery(GEN1), keep_one)
    write_generation(include, GEN3, from_gallery(GEN2), keep_one)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IMAGE_FACTORY_INCLUDE", str(include))
        env.setenv("IMAGE_FACTORY_LINEAGE_URL", f"sqlite:///{tmp / 'lineage.db'}")
        for name in (GEN1, GEN2, GEN3, GEN1, GEN1, GEN1):
            run = run_image(include, name, reason=f"build {name}")
            assert all(s == "success" for s in task_states(run).values()), (name, task_states(run))
        yield include


def versions_of(definition: str) -> list[str]:
    from image_factory.hooks.gallery import GalleryHook

    return sorted(v["name"] for v in GalleryHook(CONN).published_versions(*GALLERY, definition))


def test_retention_keeps_latest_parents_and_locked_versions_and_restores_the_lock(family: Path) -> None:
    from azure.mgmt.resource.locks.models import ManagementLockObject

    from image_factory.hooks.access import AccessHook
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.hooks.lineage import lineage_store
    from image_factory.naming import FACTORY_LOCK
    from image_factory.retention_dag import retention_dag

    assert versions_of(GEN1) == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
    access, locks = AccessHook(CONN), AccessHook(CONN).locks.management_locks
    pinned = GalleryHook(CONN).version_details(*GALLERY, GEN1, "1.0.1")
    assert pinned is not None
    locks.create_or_update_by_scope(pinned["id"], APP_LOCK, ManagementLockObject(level="CanNotDelete",
                                                                                 notes="an app team deploys from it"))
    try:
        dag = retention_dag(folder=family / "images")
        run = dag.test()
        assert all(s == "success" for s in task_states(run).values()), task_states(run)
        result = xcom(run, "report")
        assert [r["ref"] for r in result["removed"]] == [ref(GEN1, "1.0.2")]
        assert result["not_removed"] == []
        kept = {r["ref"]: r["reason"] for r in result["kept"]}
        assert kept[ref(GEN1, "1.0.3")].startswith("latest resolves to it")
        assert kept[ref(GEN1, "1.0.1")] == f"under lock {APP_LOCK} (CanNotDelete)"
        assert kept[ref(GEN1, "1.0.0")] == f"parent of {ref(GEN2, '1.0.0')}, which remains"
        assert kept[ref(GEN2, "1.0.0")].startswith("latest resolves to it")
        assert set(kept) == {ref(GEN1, v) for v in ("1.0.0", "1.0.1", "1.0.3")} | {ref(GEN2, "1.0.0"), ref(GEN3, "1.0.0")}
        assert versions_of(GEN1) == ["1.0.0", "1.0.1", "1.0.3"]
        # the factory's lock is back on the group, as it was; the app team's lock was never touched
        restored = locks.get_at_resource_group_level(GALLERY[0], FACTORY_LOCK)
        assert str(getattr(restored.level, "value", restored.level)) == "CanNotDelete"
        assert [lock["name"] for lock in access.locks_covering(pinned["id"])].count(APP_LOCK) == 1
        store = lineage_store()
        assert store.get(f"{GEN1}@1.0.2")["deleted_at"]
        assert not any(store.get(f"{GEN1}@{v}")["deleted_at"] for v in ("1.0.0", "1.0.1", "1.0.3"))

        again = dag.test()  # idempotent: nothing more to delete, the same reasons to keep
        assert xcom(again, "report")["removed"] == [] and xcom(again, "report")["kept"] == result["kept"]
    finally:
        locks.delete_by_scope(pinned["id"], APP_LOCK)


def test_revocation_propagates_and_builds_refuse_the_revoked_source(family: Path, factory_env: LocalAzure,
                                                                    capfd: pytest.CaptureFixture[str]) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    from image_factory.hooks.gallery import GalleryHook
    from image_factory.hooks.lineage import lineage_store
    from image_factory.lineage.record import TAG_REVOKED, TAG_SOURCE_REVOKED
    from image_factory.revocation import TAG_REVOKED_REASON, RevocationError, revoke
    from image_factory.revocation_dag import revocation_dag

    gallery, store = GalleryHook(CONN), lineage_store()
    dag = revocation_dag(folder=family / "images")
    assert dag.params.get_param("image").schema["enum"] == [GEN1, GEN2, GEN3]
    with pytest.raises(ParamValidationError, match="reason"):
        dag.test(run_conf={"image": GEN1, "version": "1.0.0", "reason": ""})
    with pytest.raises(RevocationError, match="reason: must not be empty"):
        revoke(f"{GEN1}@1.0.0", "   ", CONN, store)

    why = "CVE-2026-0001: vulnerable openssl in the base image"
    run = dag.test(run_conf={"image": GEN1, "version": "1.0.0", "reason": why})
    assert task_states(run) == {"revoke": "success"}
    report = xcom(run, "revoke")
    assert report["revoked"] == ref(GEN1, "1.0.0") and report["reason"] == why and report["recorded"]
    assert {(d["image"], d["state"]) for d in report["descendants"]} == {(GEN2, "tagged"), (GEN3, "tagged")}

    details = gallery.version_details(*GALLERY, GEN1, "1.0.0")
    assert details is not None and details["exclude_from_latest"] is True
    assert details["tags"][TAG_REVOKED] == report["at"] and details["tags"][TAG_REVOKED_REASON] == why
    eol = datetime.fromisoformat(details["end_of_life"])
    assert abs(datetime.now(UTC) - eol) < timedelta(minutes=5)
    assert timedelta(0) < eol - datetime.fromisoformat(report["at"]) <= timedelta(minutes=2)  # Azure: a future date
    revoked = store.get(f"{GEN1}@1.0.0")
    assert revoked["revoked"] == {"at": report["at"], "reason": why}
    for name in (GEN2, GEN3):
        assert store.get(f"{name}@1.0.0")["source_revoked_by"] == revoked["artifact_id"]
        child = gallery.version_details(*GALLERY, name, "1.0.0")
        assert child is not None and child["tags"][TAG_SOURCE_REVOKED] == ref(GEN1, "1.0.0")
        assert child["exclude_from_latest"] is False  # flagged, not revoked: its owners decide

    again = revoke(f"{GEN1}@1.0.0", why, CONN, store)  # idempotent: the first revocation time stays
    assert again["at"] == report["at"] and {d["state"] for d in again["descendants"]} == {"already tagged"}

    # a build pinned to the revoked version fails at planning, before any ARM write
    before = request_seq(factory_env)
    capfd.readouterr()
    pinned = run_image(family, GEN2, source_version="1.0.0")
    states = task_states(pinned)
    assert states["plan"] == "failed" and states["build_environment"] == "upstream_failed"
    out = "".join(capfd.readouterr())
    assert (f"source.gallery_image_version.version: 1.0.0 of {GALLERY[1]}/{GEN1} was revoked at {report['at']} "
            f"({why})") in out
    assert arm_writes(factory_env, before) == []

    # latest resolves as Azure does: past a version excluded from latest (revoking 1.0.3 excludes it)
    revoke(f"{GEN1}@1.0.3", "superseded by a fix", CONN, store)
    newest_left = "1.0.2" if "1.0.2" in versions_of(GEN1) else "1.0.1"  # retention's test deletes 1.0.2
    planned = run_image(family, GEN2, plan_only=True)
    assert task_states(planned)["plan"] == "success"
    assert xcom(planned, "plan")["source"]["id"].endswith(f"/images/{GEN1}/versions/{newest_left}")

