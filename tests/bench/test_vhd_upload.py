"""Smoke test of the VHD upload benchmark: a tiny run uploads both ways and reports every ratio (no timings)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import vhd_upload as bench

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


def test_tiny_run_compares_engine_naive_and_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "upload.json"
    argv = ["--size-mib", "64", "--data-mib", "8", "--threads", "4", "--reps", "2", "--dir", str(tmp_path),
            "--json", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["state"] == "success"
    engine, naive = report["engine"]["runs"], report["naive"]
    assert len(engine) == 2 and len(naive["runs_s"]) == 2 and len(report["read"]["runs_s"]) == 2
    for run in engine:  # only the data went out, and it was verified
        assert run["bytes_sent"] == 8 * MIB + 512 and run["read_back"] and run["ranges_present"] == 0
    assert naive["bytes_sent"] == 64 * MIB + 512
    r = report["ratios"]
    assert r["speedup"] > 0 and r["engine_vs_read"] > 0 and r["target"] == 3.0
    assert r["sent_over_allocated"] == pytest.approx((8 * MIB + 512) / report["vhd"]["allocated"])
    assert r["naive_sent_over_allocated"] > 7
    printed = capsys.readouterr().out
    assert "engine vs naive" in printed and "bytes sent / allocated" in printed
    with pytest.raises(ProcessLookupError):  # the benchmark's own local Azure is gone
        os.kill(report["emulator_pid"], 0)
    assert [p.name for p in tmp_path.iterdir()] == ["upload.json"]  # its work directory too


def test_bounds_are_enforced() -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--data-mib", "100", "--size-mib", "50"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--threads", "0"])
