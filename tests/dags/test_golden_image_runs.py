"""Every image DAG runs to success against the local Azure (simulated guests, ``dag.test()``), and
runs that must fail publish nothing and leave nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import leftovers, task_states, xcom
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SYSPREP_SECONDS = 8.0  # longer than one ImageState read: the first look after starting it sees it at work


def dag_for(name: str, folder: Path | None = None) -> Any:
    from image_factory.dag_factory import image_dags

    return image_dags(folder)[f"golden_{name}"]


def arm_writes(emu: LocalAzure, since: int) -> list[str]:
    entries = emu.ops("GET", "requests", since=since)["entries"]
    return [f"{e['method']} {e['path']}" for e in entries if e["method"] in {"PUT", "PATCH", "POST", "DELETE"}
            and "/oauth2/" not in e["path"] and "/msi/" not in e["path"]]


def request_seq(emu: LocalAzure) -> int:
    return int(emu.ops("GET", "requests")["total"])


@pytest.mark.parametrize("image", ["debian12-web", "debian12-specialized", "debian12-managed", "windows2022-base"])
def test_each_image_dag_runs_to_success(factory_env: LocalAzure, image: str,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    from image_factory.hooks.gallery import GalleryHook

    dag = dag_for(image)
    windows = image.startswith("windows")
    if windows:  # sysprep takes real seconds (all else stays instant), so generalize has to wait for it deferred
        factory_env.settings(sysprep_seconds=SYSPREP_SECONDS)
    try:
        run = dag.test()
    finally:
        factory_env.settings(sysprep_seconds=0)
    states = task_states(run)
    assert all(s == "success" for s in states.values()), states
    if windows:
        out = "".join(capfd.readouterr())
        assert xcom(run, "generalize")["mode"] == "sysprep"
        assert xcom(run, "generalize")["image_state"] == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
        assert out.count("Sysprep is still generalizing") >= 1, "generalize never deferred while sysprep ran"
        assert out.count("Running guest script 'sysprep'") == 1  # resumed looks never start it again
        assert out.count("Running guest script 'image-state'") >= 3  # before, right after, and after a deferral
    summary = xcom(run, "report")
    assert summary["image"] == image and summary["version"]
    assert summary["smoke"] and all(r["passed"] for r in summary["smoke"].values())
    stages = {"build_environment", "provision_vm", "wait_for_guest", "customise", "generalize", "wait_for_stop",
              "deallocate", "capture", "smoke_test"}
    assert stages <= set(summary["stage_seconds"]), summary["stage_seconds"]
    assert all(v >= 0 for v in summary["stage_seconds"].values())
    assert summary["scripts"] and all(len(s["sha256"]) == 64 for s in summary["scripts"])
    assert leftovers(factory_env, run.run_id) == []
    if summary["version_id"]:
        assert set(summary["regions"]) == {r["name"] for r in xcom(run, "plan")["regions"]}
        hook = GalleryHook("image_factory_azure")
        d = xcom(run, "plan")
        from image_factory.pipeline.build import load_definition

        definition = load_definition(image)
        assert not hook.exclude_from_latest(definition.gallery_resource_group, definition.gallery_name,
                                            definition.definition, d["version"]), "the version was not promoted"
    if not image.startswith("windows"):
        assert any(p.startswith("openssh-server=") for p in summary["packages"])
    assert_gallery_locked_and_shared(image)


def assert_gallery_locked_and_shared(image: str) -> None:
    """After a run the gallery's group carries the factory's CanNotDelete lock and the definition its shares."""
    from image_factory.hooks.access import AccessHook
    from image_factory.naming import FACTORY_LOCK, role_assignment_name
    from image_factory.pipeline.build import load_definition

    d = load_definition(image)
    access = AccessHook("image_factory_azure")
    lock = access.locks.management_locks.get_at_resource_group_level(d.gallery_resource_group, FACTORY_LOCK)
    assert lock.level == "CanNotDelete" and "golden-image factory" in (lock.notes or "")
    if image == "debian12-web":
        assert d.sharing, "debian12-web ships a sharing entry"
    if not d.gallery_version:
        return
    scope = str(access.compute.gallery_images.get(d.gallery_resource_group, d.gallery_name, d.definition).id)
    for share in d.sharing:
        found = list(access.authorization.role_assignments.list_for_scope(
            scope, filter=f"principalId eq '{share.principal_id}'"))
        assert [(a.scope.lower(), a.principal_type) for a in found] == [(scope.lower(), share.principal_type)], found
        role_guid = found[0].role_definition_id.rsplit("/", 1)[-1]
        assert access.authorization.role_definitions.get(scope, role_guid).role_name == share.role
        assert found[0].name == role_assignment_name(scope, share.principal_id, role_guid)


def test_bad_input_is_rejected_with_zero_arm_writes(factory_env: LocalAzure, capfd: pytest.CaptureFixture[str]) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dag_for("debian12-web")
    before = request_seq(factory_env)
    with pytest.raises(ParamValidationError, match="regions"):
        dag.test(run_conf={"regions": ["mars"]})
    for conf, words in [({"colour": "blue"}, "unknown key(s) colour"),
                        ({"regions": ["eastus"]}, "must include the gallery's location"),
                        ({"version": "1.2"}, "version")]:
        capfd.readouterr()
        try:
            run = dag.test(run_conf=conf)
        except ParamValidationError as exc:  # rejected by the params' schema before any run
            assert words in str(exc)
            continue
        states = task_states(run)
        assert states["plan"] == "failed", (conf, states)
        assert states["build_environment"] == "upstream_failed"
        out = "".join(capfd.readouterr())
        assert words in out and "not retried" in out, conf
    assert arm_writes(factory_env, before) == []


def test_a_failing_script_publishes_nothing_and_leaks_nothing(factory_env: LocalAzure, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    import hashlib

    from image_factory.hooks.gallery import GalleryHook

    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    failing = include / "scripts" / "linux" / "30-fails.sh"
    failing.write_text("#!/bin/bash\necho preparing\necho 'disk full' >&2\nexit 7\n")
    digest = hashlib.sha256(failing.read_bytes()).hexdigest()
    spec = include / "images" / "debian12-web.yaml"
    spec.write_text(spec.read_text().replace(
        "smoke:\n", f"    - {{path: linux/30-fails.sh, sha256: {digest}}}\nsmoke:\n", 1).replace(
        "definition: debian12-web", "definition: debian12-web-failing").replace("sku: web", "sku: web-failing"))
    monkeypatch.setenv("IMAGE_FACTORY_INCLUDE", str(include))
    dag = dag_for("debian12-web", include / "images")
    run = dag.test()
    states = task_states(run)
    assert states["customise"] == "failed"
    out = "".join(capfd.readouterr())
    assert "'linux/30-fails.sh' exited with code 7" in out and "disk full" in out and "not retried" in out
    assert states["capture"] == "upstream_failed" and states["teardown"] == "success"
    assert leftovers(factory_env, run.run_id) == []
    versions = GalleryHook("image_factory_azure").list_versions("rg-golden-images", "gal_golden", "debian12-web-failing")
    assert versions == []


def test_plan_only_reports_what_it_would_do_with_zero_arm_writes(factory_env: LocalAzure) -> None:
    dag = dag_for("debian12-web")
    before = request_seq(factory_env)
    run = dag.test(run_conf={"plan_only": True, "replicas": 3, "reason": "preview"})
    states = task_states(run)
    assert states["plan"] == "success" and states["proceed"] == "success"
    assert states["build_environment"] == "skipped" and states["promote"] == "skipped"
    preview = xcom(run, "plan")["preview"]
    assert any(line.startswith("build VM vm-build-") and "Standard_D2s_v5" in line for line in preview["creates"])
    assert any("westeurope x3" in line and "eastus x3" in line for line in preview["creates"])
    assert preview["cost"]["replica_count"] == 6
    assert arm_writes(factory_env, before) == []
