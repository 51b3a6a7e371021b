"""Smoke test of the replication copy benchmark: a tiny run checks its copies and reports every rate (no timings)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import replication_copy as bench

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


def test_tiny_run_compares_both_tools_and_replicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "copy.json"
    argv = ["--size-mib", "64", "--allocated-mib", "6", "--reps", "2", "--regions", "2",
            "--dir", str(tmp_path), "--json", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["vhd"]["apparent_mib"] == pytest.approx(64 + 512 / MIB)
    assert 6 <= report["vhd"]["allocated_mib"] < 12  # the extents, plus the footer's block
    for tool in ("cp", "cp_fsync", "copy_sparse"):
        runs = report["copies"][tool]["runs_s"]
        assert len(runs) == 2 and all(s > 0 for s in runs)
    assert report["ratio"]["vs_cp_fsync"] > 0 and report["ratio"]["target"] == 0.9
    repl = report["replication"]
    assert repl["regions"] == ["westeurope", "eastus"] and repl["seconds"] > 0
    assert all(a < 16 * MIB for a in repl["copies_allocated"])  # the regions' copies stayed sparse
    printed = capsys.readouterr().out
    assert "copy_sparse/cp" in printed and "replication to 2 regions" in printed
    with pytest.raises(ProcessLookupError):  # the benchmark's own local Azure is gone
        os.kill(repl["emulator_pid"], 0)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.json"]  # its work directory too


def test_the_built_vhd_is_sparse_and_valid(tmp_path: Path) -> None:
    path = tmp_path / "d.vhd"
    data = bench.build_vhd(path, 128, 10)
    assert data == 10 * MIB
    assert bench.allocated(path) < 16 * MIB
    assert bench.vhd.check_fixed(path).current_size == 128 * MIB


def test_bounds_are_enforced() -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--allocated-mib", "100", "--size-mib", "50"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--regions", "99"])
