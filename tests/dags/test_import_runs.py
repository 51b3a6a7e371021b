"""Imports of on-premises disks, run with ``dag.test()`` against the local Azure (Azurite behind its storage
accounts, simulated guests booted from the facts on each disk): a publish end to end, and every refusal
before anything is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import task_states, xcom
from tests.dags.generations import GALLERY, empty_include
from tests.dags.test_golden_image_runs import arm_writes, request_seq
from tests.localazure import LocalAzure
from tests.plugins.image_factory.disks.builders import PACKAGES, build_disk

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(1200)]


def write_import(include: Path, name: str, *, disk: str, os_state: str = "Generalized", generation: str = "V1",
                 fmt: str = "auto", managed_image: bool = False) -> None:
    """An import definition like include/images/debian12-imported.yaml, with checks the test disks pass."""
    outputs = ("{gallery_version: true, managed_image: {name: " + name + "}}" if managed_image
               else "{gallery_version: true}")
    (include / "images" / f"{name}.yaml").write_text(f"""\
name: {name}
description: imported in a test
owner: platform-team
gallery: {{resource_group: {GALLERY[0]}, name: {GALLERY[1]}, location: westeurope}}
image:
  definition: {name}
  publisher: GoldenFactory
  offer: imports
  sku: {name}
  os_type: Linux
  os_state: {os_state}
  hyper_v_generation: {generation}
source:
  disk: {{path: {disk}, format: {fmt}}}
build: {{location: westeurope, vm_size: Standard_B2s}}
smoke:
  checks:
    - {{name: Debian 12, command: cat /etc/os-release, expect_output: 'VERSION_ID="12"'}}
    - {{name: SSH server installed, command: "dpkg-query -W -f '${{Status}}' openssh-server", expect_output: install ok installed}}
replication:
  regions:
    - {{name: westeurope, replicas: 1}}
    - {{name: eastus, replicas: 1}}
outputs: {outputs}
""")


@pytest.fixture
def imports_env(factory_env: LocalAzure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    include = empty_include(tmp_path)
    folders = {"include": include, "imports": tmp_path / "imports", "work": tmp_path / "work"}
    folders["imports"].mkdir()
    monkeypatch.setenv("IMAGE_FACTORY_INCLUDE", str(include))
    monkeypatch.setenv("IMAGE_FACTORY_IMPORT_DIR", str(folders["imports"]))
    monkeypatch.setenv("IMAGE_FACTORY_WORK_DIR", str(folders["work"]))
    monkeypatch.setenv("IMAGE_FACTORY_LINEAGE_URL", f"sqlite:///{tmp_path / 'lineage.db'}")
    return folders


def run_import(include: Path, name: str, **conf: Any) -> Any:
    from image_factory.dag_factory import image_dags

    return image_dags(include / "images")[f"golden_{name}"].test(run_conf=conf or None)


def staging_blob(plan: dict[str, Any]) -> Any:
    from image_factory.hooks.storage import StorageHook

    st = plan["staging"]
    return StorageHook("image_factory_azure").blob_client(st["resource_group"], st["storage_account"],
                                                          st["container"], st["blob"])


def test_a_qcow2_disk_is_converted_uploaded_published_and_recorded(imports_env: dict[str, Path],
                                                                   factory_env: LocalAzure) -> None:
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.hooks.lineage import lineage_store

    build_disk(imports_env["imports"] / "onprem.qcow2", size_mib=48, fmt="qcow2")
    write_import(imports_env["include"], "imp-web", disk="onprem.qcow2", managed_image=True)
    run = run_import(imports_env["include"], "imp-web", reason="import test")
    states = task_states(run)
    assert all(s == "success" for s in states.values()), states

    prepared, inspected, uploaded = (xcom(run, t) for t in ("prepare_disk", "inspect_disk", "upload"))
    assert prepared["source_format"] == "qcow2" and prepared["converted"] is True
    assert prepared["virtual_size"] == 48 * 1024 * 1024
    assert inspected["generations"] == ["V1"] and inspected["os_state"] == "generalized"
    assert inspected["packages"] == list(PACKAGES)
    # a 48 MiB disk with a few KiB of files: only its data went over the wire, and it was read back
    assert 0 < uploaded["bytes_sent"] < uploaded["size"] // 4 and uploaded["read_back"] is True

    smoke = xcom(run, "report")["smoke"]
    assert set(smoke) == {"westeurope", "eastus"} and all(s["passed"] for s in smoke.values()), smoke
    version = GalleryHook("image_factory_azure").version_details(*GALLERY, "imp-web", "1.0.0")
    assert version is not None and version["exclude_from_latest"] is False  # promoted
    assert xcom(run, "capture")["managed_image_id"].endswith("/images/imp-web-1.0.0")

    rec = lineage_store().get("imp-web@1.0.0")
    assert rec["status"] == "published" and rec["parent_id"] is None
    assert rec["source"]["kind"] == "disk" and rec["source"]["disk"].endswith("onprem.qcow2")
    assert rec["source"]["detected_format"] == "qcow2" and rec["source"]["vhd_sha256"] == uploaded["sha256"]
    assert rec["packages"] == list(PACKAGES)

    # teardown: the staging blob, the converted disk and the run's group are gone; the account stays
    plan = xcom(run, "plan")
    assert not staging_blob(plan).exists()
    assert not any(imports_env["work"].iterdir())
    from tests.dags.conftest import leftovers

    assert leftovers(factory_env, run.run_id) == []

    # an imported image's versions are published like a build's: retention judges them, revocation offers them
    from image_factory.retention_dag import retention_dag
    from image_factory.revocation_dag import revocation_dag

    images = imports_env["include"] / "images"
    assert "imp-web" in revocation_dag(folder=images).params.get_param("image").schema["enum"]
    retained = retention_dag(folder=images).test()
    kept = {r["ref"]: r["reason"] for r in xcom(retained, "report")["kept"]}
    assert "/".join((*GALLERY, "imp-web", "1.0.0")).lower() in kept, kept


@pytest.mark.parametrize(("disk", "definition", "where", "says"), [
    ("notes.txt", {}, "prepare_disk", "not a disk image"),
    ("gen2.raw", {"generation": "V1"}, "inspect_disk", "image.hyper_v_generation"),
    ("lived-in.vhd", {}, "inspect_disk", "image.os_state"),
    ("onprem.qcow2", {"fmt": "vmdk"}, "prepare_disk", "format: the definition says vmdk"),
    ("unaligned.vhd", {}, "prepare_disk", "vhd.whole_mib"),
    ("corrupt.vhd", {}, "prepare_disk", "vhd.checksum"),
])
def test_a_disk_that_contradicts_its_definition_is_refused_before_anything_is_created(
        imports_env: dict[str, Path], factory_env: LocalAzure, disk: str, definition: dict[str, str], where: str,
        says: str, capfd: pytest.CaptureFixture[str]) -> None:
    folder = imports_env["imports"]
    {"notes.txt": lambda p: p.write_text("these are my notes, not a disk\n" * 40),
     "gen2.raw": lambda p: build_disk(p, table="gpt", esp=True),
     "lived-in.vhd": lambda p: build_disk(p, fmt="vhd", generalized=False),
     "onprem.qcow2": lambda p: build_disk(p, fmt="qcow2"),
     "unaligned.vhd": unaligned_vhd, "corrupt.vhd": corrupt_vhd}[disk](folder / disk)
    write_import(imports_env["include"], "imp-bad", disk=disk, **definition)
    before = request_seq(factory_env)
    run = run_import(imports_env["include"], "imp-bad")
    states = task_states(run)
    assert states[where] == "failed" and states["build_environment"] == "upstream_failed", states
    out, err = capfd.readouterr()
    assert says in out + err
    assert arm_writes(factory_env, before) == []  # no group, no account, no blob, no version


def unaligned_vhd(path: Path) -> None:
    """A fixed VHD whose data is 8 MiB and 3 sectors: Azure takes whole MiB only."""
    from image_factory.disks.vhd import make_footer

    raw = build_disk(path.with_suffix(".raw"), size_mib=8)
    data = raw.read_bytes() + bytes(3 * 512)
    path.write_bytes(data + make_footer(len(data)))
    raw.unlink()


def corrupt_vhd(path: Path) -> None:
    """A fixed VHD one bit of whose footer flipped in transit (its checksum no longer adds up)."""
    build_disk(path, fmt="vhd")
    with open(path, "r+b") as fh:
        fh.seek(-512 + 40, 2)  # the footer's original-size field
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x01]))


def test_a_specialized_disk_is_smoke_tested_through_run_command(imports_env: dict[str, Path]) -> None:
    build_disk(imports_env["imports"] / "server.vhdx", size_mib=32, fmt="vhdx", generalized=False, user="ops")
    write_import(imports_env["include"], "imp-spec", disk="server.vhdx", os_state="Specialized")
    run = run_import(imports_env["include"], "imp-spec")
    states = task_states(run)
    assert all(s == "success" for s in states.values()), states
    checks = xcom(run, "report")["smoke"]["westeurope"]["checks"]
    assert checks[0]["name"].startswith("boots and its VM agent runs commands") and checks[0]["passed"]
    assert [c["name"] for c in checks[1:]] == ["Debian 12", "SSH server installed"]
    assert all(c["passed"] for c in checks), checks


def test_a_staging_blob_holding_other_content_is_never_overwritten(imports_env: dict[str, Path],
                                                                   factory_env: LocalAzure,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    build_disk(imports_env["imports"] / "onprem.vhd", size_mib=16, fmt="vhd")
    write_import(imports_env["include"], "imp-clash", disk="onprem.vhd")
    from image_factory.dag_factory import image_dags

    # someone else's upload already sits where this run's blob goes: plan the run only, to learn the name
    planned = run_import(imports_env["include"], "imp-clash", plan_only=True)
    plan = xcom(planned, "plan")
    from image_factory.hooks.storage import StorageHook

    st = plan["staging"]
    from image_factory.hooks.resources import ResourceGroupHook

    ResourceGroupHook("image_factory_azure").ensure_resource_group(st["resource_group"], "westeurope", {})
    hook = StorageHook("image_factory_azure")
    hook.ensure_account(st["resource_group"], st["storage_account"], location="westeurope", tags={})
    hook.ensure_container(st["resource_group"], st["storage_account"], st["container"])
    theirs = staging_blob(plan)
    theirs.upload_blob(b"someone else's disk".ljust(1024, b"\0"), blob_type="PageBlob", overwrite=True)
    run = image_dags(imports_env["include"] / "images")["golden_imp-clash"].test()
    states = task_states(run)
    assert states["upload"] == "failed", states
    out, err = capfd.readouterr()
    assert "exists with other content" in out + err
    assert theirs.download_blob().readall().startswith(b"someone else's disk")  # untouched


def test_a_blob_its_teardown_left_carries_the_run_and_the_sweeper_removes_it(
        imports_env: dict[str, Path], factory_env: LocalAzure, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staging blob lies outside the run's group: the run tags its upload wrote are how the sweeper
    knows whose it is once the run that should have deleted it is over."""
    from image_factory.hooks.resources import ResourceGroupHook
    from image_factory.naming import RunNames
    from image_factory.pipeline import imports
    from image_factory.sweeper_dag import sweeper_dag

    build_disk(imports_env["imports"] / "onprem.vhd", size_mib=16, fmt="vhd")
    write_import(imports_env["include"], "imp-leak", disk="onprem.vhd")

    def worker_lost(plan: dict[str, Any], azure_conn_id: str) -> dict[str, Any]:
        raise RuntimeError("the worker went away during teardown")

    with monkeypatch.context() as patch:
        patch.setattr(imports, "cleanup", worker_lost)
        run = run_import(imports_env["include"], "imp-leak")
    # the image was published: the run's state is its report's, the failed teardown leaves its leftovers
    assert task_states(run)["teardown"] == "failed" and run.state == "success"
    plan = xcom(run, "plan")
    blob = staging_blob(plan)
    meta = blob.get_blob_properties().metadata
    assert (meta["imagefactory_image"], meta["imagefactory_run_id"]) == ("imp-leak", run.run_id)
    group = RunNames.for_run("imp-leak", run.dag_id, run.run_id).resource_group
    assert ResourceGroupHook("image_factory_azure").resource_group_exists(group)

    sweep = sweeper_dag(images=imports_env["include"] / "images").test()
    assert sweep.state == "success", task_states(sweep)
    assert not blob.exists()
    assert not ResourceGroupHook("image_factory_azure").resource_group_exists(group)
    st = plan["staging"]
    removed = xcom(sweep, "report")["staging_blobs"]["removed"]
    assert {"blob": f"{st['storage_account']}/{st['container']}/{st['blob']}", "run_id": run.run_id,
            "reason": "run success (finished)"} in removed
