"""The triggerer loads triggers by class path: they must import from plugins/ alone, with no DAG folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]

CHECK = """
from airflow._shared.module_loading import import_string
from image_factory.triggers.compute import GuestPortTrigger, VirtualMachinePowerStateTrigger
from image_factory.triggers.gallery import ReplicationTrigger
from image_factory.triggers.resources import ResourceGroupDeletedTrigger

for trigger in (
    VirtualMachinePowerStateTrigger("c", "rg", "vm", ["running"], timeout_seconds=1),
    GuestPortTrigger("h", 22, "ssh", timeout_seconds=1),
    ReplicationTrigger("c", "rg", "g", "d", "1.0.0", region_timeout_seconds=1),
    ResourceGroupDeletedTrigger("c", "rg", timeout_seconds=1),
):
    classpath, kwargs = trigger.serialize()
    assert type(import_string(classpath)(**kwargs)) is type(trigger)
    print(classpath)
"""


def test_triggers_import_from_plugins_without_the_dag_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "PYTHONPATH": str(ROOT / "plugins"),
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "no-dags"),
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        "image_factory.triggers.compute.VirtualMachinePowerStateTrigger",
        "image_factory.triggers.compute.GuestPortTrigger",
        "image_factory.triggers.gallery.ReplicationTrigger",
        "image_factory.triggers.resources.ResourceGroupDeletedTrigger",
    ]
