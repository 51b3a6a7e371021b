"""The source watcher triggers a rebuild of an image whose Marketplace `latest` moved past its newest version."""

from __future__ import annotations

import pytest

from tests.dags.conftest import task_states
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(900)]


def test_a_moved_source_triggers_exactly_the_affected_image(factory_env: LocalAzure) -> None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    from image_factory.dag_factory import image_dags
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.source_watch import newest_promoted
    from image_factory.watch_dag import watcher_dag

    built = image_dags()["golden_debian12-web"].test()
    assert task_states(built)["promote"] == "success"
    gallery = GalleryHook("image_factory_azure")
    newest = newest_promoted(gallery.published_versions("rg-golden-images", "gal_golden", "debian12-web"))
    assert newest is not None and newest["tags"]["source"].startswith("Debian:debian-12:12-gen2:")

    watch = watcher_dag()
    quiet = watch.test()
    assert task_states(quiet)["find_changed_sources"] == "success"
    assert task_states(quiet).get("trigger_rebuilds") in (None, "skipped")  # nothing moved: nothing to map

    # the image was built from an older Marketplace version than today's latest
    version = gallery.compute.gallery_image_versions.get("rg-golden-images", "gal_golden", "debian12-web",
                                                         newest["name"])
    version.tags["source"] = "Debian:debian-12:12-gen2:0.20241210.1960"
    gallery.compute.gallery_image_versions.begin_create_or_update(
        "rg-golden-images", "gal_golden", "debian12-web", newest["name"], version).result()
    def runs_of(dag_id: str) -> int:
        with create_session() as session:
            return session.query(DagRun).filter(DagRun.dag_id == dag_id).count()

    others = {d: runs_of(d) for d in image_dags() if d != "golden_debian12-web"}
    before = runs_of("golden_debian12-web")
    moved = watch.test()
    assert task_states(moved)["trigger_rebuilds"] == "success"
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "golden_debian12-web").order_by(DagRun.id).all()
        assert len(runs) == before + 1
        assert "source changed" in runs[-1].conf["reason"] and "0.20241210.1960" in runs[-1].conf["reason"]
    assert {d: runs_of(d) for d in others} == others  # images whose source did not move are left alone
