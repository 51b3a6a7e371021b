"""The main job of `./factory run` (the tour) works end to end against a local Azure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.localazure import ROOT, LocalAzure

pytestmark = [pytest.mark.slow, pytest.mark.guests("simulated")]


def test_tour_builds_publishes_smoke_tests_and_cleans_up(tmp_path, real_azure):
    if real_azure:
        pytest.skip("the tour targets the local Azure")
    emu = LocalAzure(tmp_path / "tour", time_factor=0.0).start()
    try:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "tour.py"), "--state-dir", str(emu.state_dir)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-3000:]
        assert "version 1.0.0: Succeeded" in out
        assert "build user 'builder' gone" in out
        assert "left behind: nothing" in out
        assert emu.ops("GET", "inventory")["count"] == 0
    finally:
        emu.stop()
