"""Smoke test of the latency benchmark: a very short run produces sane numbers (no timing thresholds)."""

from __future__ import annotations

import json
import os

import pytest

from bench import emulator_latency as bench

pytestmark = pytest.mark.slow


def _ordered(stats: dict[str, float]) -> bool:
    return 0 <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]


def test_short_run_reports_every_phase_and_stops_its_emulator(tmp_path, capsys):
    out = tmp_path / "latency.json"
    argv = ["--rate", "20", "--duration", "1", "--workers", "4", "--clients", "2", "--closed-duration", "1",
            "--sdk-calls", "20", "--groups", "3", "--json", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    phases = report["phases"]
    assert set(phases) == {"open", "closed", "raw_get", "sdk_get"}
    for phase in phases.values():
        assert phase["errors"] == 0, phase["error_kinds"]
        assert phase["requests"] > 0 and phase["achieved_rps"] > 0
        assert phase["latency"]["count"] == phase["requests"]
        assert _ordered(phase["latency"])
    opened = phases["open"]
    assert opened["requests"] == 20  # rate x duration, every planned call sent
    assert set(opened["mix"]) <= {kind for kind, _ in bench.MIX} and sum(opened["mix"].values()) == 20
    assert opened["server_dispatch"]["count"] == 20  # the emulator logged exactly these calls
    assert _ordered(opened["service_time"]) and _ordered(opened["server_dispatch"])
    assert phases["raw_get"]["requests"] == phases["sdk_get"]["requests"] == 20
    assert report["target"]["ratio"] == pytest.approx(opened["latency"]["p99_ms"] / 20.0)
    printed = capsys.readouterr().out
    assert "p99/target" in printed and "sequential GET, SDK" in printed
    with pytest.raises(ProcessLookupError):  # the benchmark's own local Azure is gone
        os.kill(report["emulator"]["pid"], 0)


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == pytest.approx(50.5)
    assert bench.percentile(values, 99) == pytest.approx(99.01)
    assert bench.percentile([3.0, 1.0, 2.0], 100) == 3.0


def test_bounds_are_enforced():
    with pytest.raises(SystemExit):
        bench.parse_args(["--duration", "100000"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--phases", "open,nope"])
