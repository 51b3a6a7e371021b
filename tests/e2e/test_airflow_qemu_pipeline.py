"""The Linux generalized DAG end to end under real Airflow processes, with real Debian guests under QEMU.

The same deployment as test_airflow_pipeline.py (api-server, scheduler with the LocalExecutor,
dag-processor, triggerer), but the local Azure boots the Marketplace Debian image in QEMU: the
guest scripts really install nginx over apt, the guest really deprovisions and powers off, and
the smoke VMs in both regions boot from the replicated version. Nothing may be left running.
"""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from emulator.guests.qemu.image import build_base_image
from tests.e2e.airflow_pipeline import DAG_ID, Pipeline, promoted, running_pipeline, versions_of_run

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.guests("qemu"), pytest.mark.timeout(3000)]

RUN_TIMEOUT = 2400.0  # TCG guests on two cores: ~5-8 min alone, much longer next to other guests
TIME_FACTOR = 0.05


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    build_base_image(refresh=False, log=lambda _m: None)  # cached (or built once) before the emulator starts
    with running_pipeline(
        tmp_path_factory.mktemp("airflow-qemu-pipeline"),
        time_factor=TIME_FACTOR,
        azure_env={"LOCAL_AZURE_LINUX_RUNTIME": "qemu"},
        azure_start_timeout=60,
    ) as p:
        yield p


def qemu_processes(p: Pipeline) -> list[int]:
    """QEMU processes the emulator started (its children), by PID."""
    assert p.emu.proc is not None
    return [c.pid for c in psutil.Process(p.emu.proc.pid).children(recursive=True) if "qemu" in c.name()]


def test_golden_image_on_qemu_guests_under_airflow(pipeline: Pipeline) -> None:
    run_id = pipeline.trigger("e2e: QEMU guests under Airflow")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    summary = pipeline.report(run_id)
    assert {region: r["state"] for region, r in summary["regions"].items()} == {
        "westeurope": "Completed",
        "eastus": "Completed",
    }
    assert set(summary["smoke"]) == {"westeurope", "eastus"}
    for region, result in summary["smoke"].items():
        assert result["passed"], (region, result["checks"])
    assert any(p.startswith("nginx=") for p in summary["packages"]), "nginx is not in the package manifest"
    mine = versions_of_run(pipeline.emu, run_id)
    assert [v.name for v in mine] == [summary["version"]]
    assert promoted(pipeline.emu, summary["version"])
    assert pipeline.leftovers(run_id) == []
    assert qemu_processes(pipeline) == [], "teardown left QEMU guests running"
    # The reported wait for the guest is the whole boot (power state, then SSH), not only its last part.
    waited = pipeline.task(run_id, "wait_for_guest")["duration"]
    assert summary["stage_seconds"]["wait_for_guest"] >= 0.8 * float(waited) - 5, (waited, summary["stage_seconds"])
    print(f"\n{DAG_ID} on QEMU: {pipeline.run_seconds(run_id):.1f} s, stages {summary['stage_seconds']}")
