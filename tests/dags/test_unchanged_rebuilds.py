"""A scheduled rebuild that finds nothing changed publishes nothing when the definition says so, and says why;
package updates, a person's run and the default (``publish_when_unchanged: true``) always publish.

Simulated guests on the local Azure, ``dag.test()``; scheduled runs are created as the timetable creates them
(``scheduled_test``). The simulated archive is held at one month for each test, then moved on where a test
needs package updates (``PUT /_emulator/guest-archive``).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dags.conftest import leftovers, scheduled_test, task_states, xcom
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ("rg-golden-images", "gal_golden")
PUBLISHING = ("customise", "generalize", "wait_for_stop", "deallocate", "capture", "replicate", "smoke_regions",
              "smoke_test", "promote", "report")


@pytest.fixture
def archive(factory_env: LocalAzure) -> Iterator[int]:
    """The simulated package archive held at this month (a month may turn during a test), released afterwards."""
    serial = int(factory_env.ops("GET", "guest-archive")["serial"])
    factory_env.ops("PUT", "guest-archive", {"serial": serial})
    try:
        yield serial
    finally:
        factory_env.ops("PUT", "guest-archive", {"serial": None})


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive: int) -> Callable[[bool | None], Any]:
    """debian12-web publishing to a gallery definition of its own (one region); returns ``dag(option)``."""
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    monkeypatch.setenv("IMAGE_FACTORY_INCLUDE", str(include))
    suffix = uuid.uuid4().hex[:8]
    spec = include / "images" / "debian12-web.yaml"
    raw = yaml.safe_load(spec.read_text())

    def dag(publish_when_unchanged: bool | None) -> Any:
        """The DAG after writing the definition with the option (None: not set, the default)."""
        from image_factory.dag_factory import image_dags

        raw["image"].update(definition=f"unchanged-{suffix}", sku=f"unchanged-{suffix}")
        raw["replication"]["regions"] = [{"name": "westeurope", "replicas": 1}]
        raw["schedule"].pop("publish_when_unchanged", None)
        if publish_when_unchanged is not None:
            raw["schedule"]["publish_when_unchanged"] = publish_when_unchanged
        spec.write_text(yaml.safe_dump(raw, sort_keys=False))
        return image_dags(include / "images")["golden_debian12-web"]

    dag.definition = f"unchanged-{suffix}"  # type: ignore[attr-defined]
    return dag


def versions(definition: str) -> dict[str, dict[str, str]]:
    from image_factory.hooks.gallery import GalleryHook

    found = GalleryHook("image_factory_azure").published_versions(*GALLERY, definition)
    return {v["name"]: v["tags"] for v in found}


def published(run: Any) -> dict[str, Any]:
    states = task_states(run)
    assert all(s == "success" for s in states.values()), states
    summary = xcom(run, "report")
    assert summary["version"] and summary["version_id"] and xcom(run, "check_changes")["publish"] is True, summary
    return dict(summary)


def test_an_unchanged_scheduled_rebuild_publishes_nothing_and_says_why_but_a_person_s_run_publishes(
        factory_env: LocalAzure, image: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from image_factory.changes import TAG_SCRIPTS, TAG_UPDATES, scripts_digest, updates_count
    from image_factory.pipeline.build import load_definition

    dag = image(False)
    first = published(dag.test())  # the first build: nothing to compare with
    assert first["publish_decision"].startswith("a manual run (UI or REST API) always publishes")
    tags = versions(image.definition)["1.0.0"]
    assert tags[TAG_SCRIPTS] == scripts_digest(load_definition("debian12-web").scripts)
    pending = updates_count(tags[TAG_UPDATES])
    assert pending  # the Marketplace image is older than this month's archive: its guest was offered upgrades
    source = tags["source"]
    assert source.startswith("Debian:debian-12:12-gen2:")

    caplog.clear()
    run = scheduled_test(dag, monkeypatch)
    assert run.run_id.startswith("scheduled__") and str(getattr(run.run_type, "value", run.run_type)) == "scheduled"
    states = task_states(run)
    assert all(states[t] == "success" for t in ("plan", "check_changes", "publish_needed", "teardown")), states
    assert all(states[t] == "skipped" for t in PUBLISHING), states
    why = (f"source {source} same as version 1.0.0, scripts unchanged, no package updates (the guest is offered "
           f"the same {pending} upgrade(s) as when 1.0.0 was built)")
    checked = xcom(run, "check_changes")
    assert (checked["publish"], checked["reason"], checked["against"]) == (False, why, "1.0.0")
    assert f"Not publishing (teardown deletes the build VM): {why}" in caplog.text
    assert list(versions(image.definition)) == ["1.0.0"]
    assert leftovers(factory_env, run.run_id) == []

    manual = published(dag.test())  # nothing changed either, but a person asked for it
    assert manual["version"] == "1.0.1"
    assert manual["publish_decision"] == ("a manual run (UI or REST API) always publishes; only scheduled patch "
                                          "rebuilds skip when nothing changed")
    assert sorted(versions(image.definition)) == ["1.0.0", "1.0.1"]


def test_package_updates_and_the_default_publish_scheduled_rebuilds(factory_env: LocalAzure, image: Any, archive: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dag = image(False)
    published(dag.test())
    factory_env.ops("PUT", "guest-archive", {"serial": archive + 1})  # a month of security updates later
    run = scheduled_test(dag, monkeypatch)
    summary = published(run)
    assert summary["version"] == "1.0.1"
    assert summary["publish_decision"].startswith("package updates since version 1.0.0: the guest is offered ")
    before = versions(image.definition)
    assert before["1.0.1"]["package-updates"] != before["1.0.0"]["package-updates"]

    default = image(None)  # publish_when_unchanged not set: monthly rebuilds publish
    run = scheduled_test(default, monkeypatch)
    summary = published(run)
    assert summary["version"] == "1.0.2"
    assert summary["publish_decision"] == ("schedule.publish_when_unchanged is true (the default): every rebuild "
                                           "publishes")
    plan = xcom(run, "plan")["changes"]  # the same source and scripts as 1.0.1, built this same month
    assert plan["candidate"] is True and plan["detail"].endswith("same as version 1.0.1, scripts unchanged")
    assert "package-updates" not in versions(image.definition)["1.0.2"]  # not checked: the definition publishes anyway
    assert leftovers(factory_env, run.run_id) == []
