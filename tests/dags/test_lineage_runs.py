"""Lineage of real runs (simulated guests, ``dag.test()``): three generations, a failed build, and the
store, the version tags and the Assets agreeing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags.conftest import task_states, xcom
from tests.dags.generations import GALLERY, MARKETPLACE, empty_include, from_gallery, run_image, write_generation
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(1200)]


@pytest.fixture
def lineage_include(factory_env: LocalAzure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    include = empty_include(tmp_path)
    write_generation(include, "lin-gen1", MARKETPLACE)
    write_generation(include, "lin-gen2", from_gallery("lin-gen1"))
    write_generation(include, "lin-gen3", from_gallery("lin-gen2"))
    monkeypatch.setenv("IMAGE_FACTORY_INCLUDE", str(include))
    monkeypatch.setenv("IMAGE_FACTORY_LINEAGE_URL", f"sqlite:///{tmp_path / 'lineage.db'}")
    return include


def test_three_generations_link_and_all_three_places_agree(lineage_include: Path) -> None:
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.hooks.lineage import lineage_store
    from image_factory.lineage import record

    runs = {}
    for gen in ("lin-gen1", "lin-gen2", "lin-gen3"):
        runs[gen] = run_image(lineage_include, gen, reason=f"build {gen}")
        states = task_states(runs[gen])
        assert all(s == "success" for s in states.values()), (gen, states)
        assert xcom(runs[gen], "record_lineage")["status"] == "published"
    store = lineage_store()
    gen1, gen2, gen3 = (store.get(f"{g}@1.0.0") for g in ("lin-gen1", "lin-gen2", "lin-gen3"))
    assert gen1["parent_id"] is None and gen1["source"]["publisher"] == "Debian"
    assert gen1["source"]["requested"] == "latest" and gen1["source"]["version"] != "latest"  # what latest resolved to
    assert gen2["parent_id"] == gen1["artifact_id"] and gen3["parent_id"] == gen2["artifact_id"]
    assert [a["image"] for a in store.ancestors(gen3["artifact_id"])] == ["lin-gen2", "lin-gen1"]
    assert [(d["image"], d["depth"]) for d in store.descendants("lin-gen1@1.0.0")] == [("lin-gen2", 1), ("lin-gen3", 2)]
    assert [r["image"] for r in store.built_from_marketplace("debian", "debian-12", "12-gen2")] == ["lin-gen1"]
    assert store.built_from_marketplace("Debian", "debian-12", "12-gen2", "0.0.0") == []

    # the record says what a version is made of
    assert gen3["run"]["run_id"] == runs["lin-gen3"].run_id and gen3["run"]["reason"] == "build lin-gen3"
    assert gen3["run"]["trigger"] in {"manual", "test"}  # dag.test(): no scheduler listener saw the run start
    assert len(gen3["git_commit"].split("-")[0]) == 40
    assert [s["path"] for s in gen3["scripts"]] == ["linux/10-baseline.sh", "linux/20-nginx.sh"]
    assert any(p.startswith("openssh-server=") for p in gen3["packages"])
    assert {r["name"]: r["state"] for r in gen3["regions"]} == {"westeurope": "Completed", "eastus": "Completed"}
    assert [s["region"] for s in gen3["smoke"]] == ["eastus", "westeurope"] and all(s["passed"] for s in gen3["smoke"])
    assert {"customise", "capture", "smoke_test"} <= set(gen3["stage_seconds"])
    assert gen3["end_of_life"], "the version's end-of-life date was not recorded"

    # the version's tags carry the same record, digested
    hook = GalleryHook("image_factory_azure")
    for rec in (gen1, gen2, gen3):
        details = hook.version_details(*GALLERY, rec["image"], "1.0.0")
        assert details is not None
        tags = details["tags"]
        assert record.agreement(rec, tags) == [], rec["image"]
        assert len(tags) <= record.MAX_TAGS and all(len(v) <= record.MAX_TAG_VALUE for v in tags.values())
    assert tags[record.TAG_PARENT] == f"{GALLERY[0]}/{GALLERY[1]}/lin-gen2/1.0.0".lower()  # gen3's tags


def test_a_failed_build_is_recorded_with_where_it_stopped(lineage_include: Path) -> None:
    import hashlib

    from image_factory.hooks.lineage import lineage_store

    failing = lineage_include / "scripts" / "linux" / "30-fails.sh"
    failing.write_text("#!/bin/bash\necho 'disk full' >&2\nexit 7\n")
    spec = lineage_include / "images" / "lin-gen1.yaml"
    digest = hashlib.sha256(failing.read_bytes()).hexdigest()
    spec.write_text(spec.read_text().replace("smoke:\n", f"    - {{path: linux/30-fails.sh, sha256: {digest}}}\nsmoke:\n", 1))
    run = run_image(lineage_include, "lin-gen1")
    states = task_states(run)
    assert states["customise"] == "failed" and states["record_lineage"] == "success"
    assert run.state == "failed", "recording the lineage of a failed build must not turn the run green"
    rec = lineage_store().get(f"lin-gen1@{xcom(run, 'plan')['version']}")
    assert rec["status"] == "failed" and rec["failed_task"] == "customise"
    assert rec["run"]["run_id"] == run.run_id and rec["smoke"] == [] and rec["packages"] == []
