"""Smoke tests of the guest-cycle benchmark: every stage reported, everything it made gone (no timings)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench import guest_cycle as bench

STAGES = ("boot_ssh", "customise", "deprovision", "shutdown", "capture", "boot_replica_ssh")


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "cycle.json"
    assert bench.main([*argv, "--dir", str(tmp_path), "--json", str(out), "--quiet"]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def _assert_cleaned_up(report: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ProcessLookupError):  # the benchmark's own local Azure is gone
        os.kill(report["emulator_pid"], 0)
    assert report["qemu_left_behind"] == []
    assert [p.name for p in tmp_path.iterdir()] == ["cycle.json"]  # its work directory (state, disks) too


@pytest.mark.slow
def test_simulated_run_reports_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, printed = _run(
        tmp_path,
        capsys,
        "--runtime",
        "simulated",
        "--packer",
        "no",
        "--regions",
        "2",
        "--copy-reps",
        "1",
        "--synthetic-mib",
        "64",
        "--synthetic-allocated-mib",
        "6",
    )
    assert report["runtime"] == "simulated"
    assert "guest runtime: SIMULATED" in printed
    stages = report["stages"]
    assert stages["build"] is None  # simulated guests have no base image to build
    for stage in (*STAGES, "replicate:eastus", "replicate:japaneast"):
        assert stages[stage] > 0, stage
    assert set(report["replication_done_s"]) == {"westeurope", "eastus", "japaneast"}
    for label in (
        "1 build",
        "2 boot",
        "3 customise",
        "4 deprovision",
        "5 shutdown",
        "6 capture",
        "7 replicate → eastus",
        "7 replicate → japaneast",
        "8 boot from replica",
    ):
        assert label in printed, label
    summary = report["summary"]
    assert summary["project_build_s"] == pytest.approx(sum(stages[s] for s in STAGES[:5]))
    assert "vs_packer" not in summary and report["packer"]["skipped"]
    copy = report["copy"]
    assert copy["source"].startswith("a synthetic VHD") and 6 <= copy["allocated_mib"] < 12
    assert all(rate > 0 for rate in copy["rates_mib_s"].values())
    assert "copy_sparse/(cp+fsync)" in printed
    _assert_cleaned_up(report, tmp_path)


def test_packer_phases_come_from_its_machine_readable_ui_lines() -> None:
    lines = [
        "100,,ui,say,==> qemu: Copying hard drive...",
        "102,,ui,say,==> qemu: Starting VM%!(PACKER_COMMA) booting",
        "140,,ui,say,==> qemu: Connected to SSH!",
        "141,qemu,artifact-count,1",
        "142,,ui,say,==> qemu: Gracefully halting virtual machine...",
        "150,,ui,say,==> qemu: Running post-processor: shell-local",
    ]
    assert bench.packer_phases(lines, 99.5, 151.0) == {
        "prepare": 2.5,
        "boot_ssh": 38.0,
        "customise": 2.0,
        "deprovision_shutdown": 8.0,
        "vhd": 1.0,
    }


def test_packer_template_boots_the_base_image_as_the_emulator_does(tmp_path: Path) -> None:
    class Image:
        qcow2, kernel, initrd = Path("/c/disk.qcow2"), Path("/c/vmlinuz"), Path("/c/initrd.img")
        cmdline, size = "root=UUID=u ro console=ttyS0", 2048 * 1024 * 1024

    template = bench.packer_template(
        Image, tmp_path, tmp_path / "seed.iso", tmp_path / "key", "tok", tmp_path / "out.vhd"
    )
    builder = template["builders"][0]
    args = {a[0]: a[1] for a in builder["qemuargs"]}
    assert args["-kernel"] == "/c/vmlinuz" and args["-append"] == Image.cmdline
    assert args["-accel"] == "tcg,thread=multi" and args["-cdrom"] == str(tmp_path / "seed.iso")
    assert builder["disk_size"] == "2048M" and builder["shutdown_command"] == bench.linux_generalize_command()
    assert template["provisioners"][0]["inline"] == bench.customise_lines("tok")
    assert "subformat=fixed,force_size=on" in template["post-processors"][0]["inline"][0]


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--regions", "9"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--runtime", "simulated", "--packer", "yes"])


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_qemu_run_reports_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real cycle (~3-5 min on 2 cores under TCG), one extra region, no Packer."""
    report, printed = _run(
        tmp_path, capsys, "--runtime", "qemu", "--packer", "no", "--regions", "1", "--copy-reps", "1"
    )
    assert "guest runtime: qemu" in printed and report["base_image"]["version"]
    for stage in ("build", *STAGES, "replicate:eastus"):
        assert report["stages"][stage] > 0, stage
    assert report["copy"]["source"].startswith("the captured VHD")
    _assert_cleaned_up(report, tmp_path)


def test_cloud_init_finish_is_read_from_the_serial_console(tmp_path: Path) -> None:
    console = tmp_path / "console.log"
    console.write_text(
        "[   70.2] cloud-init[403]: Cloud-init v. 22.4.2 running 'modules:final' at Wed. Up 69.52 seconds.\n"
        "[   73.8] cloud-init[403]: Cloud-init v. 22.4.2 finished at Wed, 25 Nov 2026 20:46:47 +0000. "
        "Datasource DataSourceNoCloud [seed=/dev/sr0][dsmode=net].  Up 73.65 seconds\n"
    )
    assert bench.cloud_init_uptimes(console) == {"modules:final": 69.52, "finished": 73.65}
    assert bench.cloud_init_uptimes(tmp_path / "missing.log") == {}
