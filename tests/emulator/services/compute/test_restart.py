"""VMs survive an emulator restart: ARM state, and guests brought back up for the running ones.

Runs a local Azure of its own (not the session one) so restarting it disturbs no other test; its
guests listen on their own SSH port, so they never collide with the session emulator's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.services.compute.conftest import Kit
from tests.localazure import LocalAzure, free_port

pytestmark = [pytest.mark.slow, pytest.mark.guests("simulated")]
CONN_ID = "compute_restart"


@pytest.fixture
def restartable(tmp_path: Path, local_azure: LocalAzure, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAzure, Any]]:
    from image_factory.hooks.arm import AzureResourceManagerHook

    emu = LocalAzure(tmp_path / "restartable", env={"LOCAL_AZURE_SSH_PORT": str(free_port())}).start()
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emu.connection_uri_env())
        yield emu, AzureResourceManagerHook(CONN_ID)
    finally:
        emu.stop()


def test_vms_and_guests_survive_a_restart(restartable: tuple[LocalAzure, Any], ssh_public_key: str) -> None:
    emu, arm = restartable
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    kit = Kit(arm, "rg", "westeurope", ssh_public_key)
    up = kit.linux_vm("up")
    kit.linux_vm("down")
    kit.compute.virtual_machines.begin_power_off("rg", "down").result()

    emu.restart()

    assert kit.compute.virtual_machines.get("rg", "up").vm_id == up.vm_id
    assert kit.wait_for("up", lambda c: c[-1] == "PowerState/running") == [
        "ProvisioningState/succeeded", "PowerState/running"]
    assert kit.statuses("down") == ["ProvisioningState/succeeded", "PowerState/stopped"]
    guests = {g["vm_id"].lower(): g for g in emu.ops("GET", "guests")["value"]}
    assert guests[up.id.lower()]["state"] == "running"
    result = kit.compute.virtual_machines.begin_run_command(
        "rg", "up", {"commandId": "RunShellScript", "script": ["hostname"]}).result()
    assert result.value[0].message == "Enable succeeded: \n[stdout]\nbuildvm\n\n[stderr]\n"
    kit.compute.virtual_machines.begin_start("rg", "down").result()
    assert kit.statuses("down")[-1] == "PowerState/running"
    kit.compute.virtual_machines.begin_delete("rg", "up").result()
    assert up.id.lower() not in {g["vm_id"].lower() for g in emu.ops("GET", "guests")["value"]}
