"""An on-premises disk imported end to end under real Airflow processes, with real Debian guests under QEMU.

The disk is the local Azure's Debian base image exported as a dynamic VHD (what Hyper-V writes), a
real bootable Debian disk that has never been near the pipeline. The import DAG converts it to a
fixed VHD, uploads it to Azurite through a storage account, publishes a gallery version from the
blob, and the smoke VMs in both regions boot from that version: QEMU runs the kernel read off the
imported disk itself. Nothing may be left running or stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.guests.qemu.image import build_base_image, export_disk
from tests.e2e.airflow_pipeline import Pipeline, promoted, running_pipeline, versions_of_run
from tests.e2e.test_airflow_qemu_pipeline import qemu_processes

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.guests("qemu"), pytest.mark.timeout(3000)]

IMPORT_DAG_ID = "golden_debian12-imported"
RUN_TIMEOUT = 2400.0


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("airflow-qemu-import")
    image = build_base_image(refresh=False, log=lambda _m: None)
    export_disk(image, tmp / "imports" / "onprem-debian12.vhd", "vhd")
    with running_pipeline(
        tmp, time_factor=0.05, azure_env={"LOCAL_AZURE_LINUX_RUNTIME": "qemu"}, azure_start_timeout=60,
        airflow_env={"IMAGE_FACTORY_IMPORT_DIR": str(tmp / "imports"), "IMAGE_FACTORY_WORK_DIR": str(tmp / "work")},
        dag_id=IMPORT_DAG_ID,
    ) as p:
        yield p


def test_a_debian_disk_exported_as_vhd_is_imported_and_boots_in_every_region(pipeline: Pipeline) -> None:
    run_id = pipeline.trigger("e2e: import a Hyper-V VHD", disk_path="onprem-debian12.vhd")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    stack, token = pipeline.stack, pipeline.token
    prepared = stack.xcom(IMPORT_DAG_ID, run_id, "prepare_disk", token)
    assert prepared["source_format"] == "vhd-dynamic" and prepared["converted"] is True
    assert prepared["virtual_size"] % (1024 * 1024) == 0
    inspected = stack.xcom(IMPORT_DAG_ID, run_id, "inspect_disk", token)
    assert inspected["generations"] == ["V1"] and inspected["os_state"] == "generalized"
    assert any(p.startswith("openssh-server=") for p in inspected["packages"])
    uploaded = stack.xcom(IMPORT_DAG_ID, run_id, "upload", token)
    assert uploaded["read_back"] is True and uploaded["bytes_sent"] < uploaded["size"] // 2  # a sparse disk

    summary = pipeline.report(run_id)
    assert {region: r["state"] for region, r in summary["regions"].items()} == {
        "westeurope": "Completed", "eastus": "Completed"}
    for region, result in summary["smoke"].items():  # a VM from the imported version booted, logged in, checked
        assert result["passed"], (region, result["checks"])
        names = [c["name"] for c in result["checks"]]
        assert names[:2] == ["boots and accepts a login", "new hostname"], names
    assert set(summary["smoke"]) == {"westeurope", "eastus"}
    mine = versions_of_run(pipeline.emu, run_id, image="debian12-imported")
    assert [v.name for v in mine] == [summary["version"]]
    assert promoted(pipeline.emu, summary["version"], image="debian12-imported")

    # nothing is left: the run's group, the staging blob, the converted disk, the guests
    assert pipeline.leftovers(run_id) == []
    work = Path(pipeline.stack.env()["IMAGE_FACTORY_WORK_DIR"])
    assert not work.exists() or not any(work.iterdir())
    storage = pipeline.emu.ops("GET", "storage")
    assert storage["running"], storage
    assert qemu_processes(pipeline) == [], "teardown left QEMU guests running"
    print(f"\n{IMPORT_DAG_ID} on QEMU: {pipeline.run_seconds(run_id):.1f} s, stages {summary['stage_seconds']}")
