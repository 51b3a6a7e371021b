"""An emulator started with QEMU guests but no base image built: the SDK gets a clear 409, nothing boots,
and the simulated guests (Windows, ``/_emulator/guests``) stay available."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.mgmt.compute.models as cm
import pytest
from azure.core.exceptions import HttpResponseError

from tests.e2e.test_qemu_golden_cycle import keypair, network, vm_body
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.slow, pytest.mark.guests("qemu")]
CONN_ID = "qemu_unbuilt"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzure]:
    root = tmp_path_factory.mktemp("qemu-unbuilt")
    la = LocalAzure(root / "state", env={"LOCAL_AZURE_LINUX_RUNTIME": "qemu",
                                         "LOCAL_AZURE_IMAGE_CACHE": str(root / "empty-cache")})
    la.start()
    try:
        yield la
    finally:
        la.stop()


@pytest.fixture(scope="module")
def arm(emu: LocalAzure) -> Iterator[Any]:
    from image_factory.hooks.arm import AzureResourceManagerHook

    key = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    os.environ[key] = emu.connection_uri_env()
    try:
        yield AzureResourceManagerHook(CONN_ID)
    finally:
        os.environ.pop(key, None)


def test_debian_without_built_image_is_409_with_build_hint(emu: LocalAzure, arm: Any) -> None:
    arm.resources.resource_groups.create_or_update("unbuilt", {"location": "westeurope"})
    try:
        assert arm.compute.virtual_machine_images.list("westeurope", "Debian", "debian-12", "12-gen2") == []
        nic, _address = network(arm, "unbuilt", "westeurope", "x")
        _key, pub = keypair()
        image = cm.ImageReference(publisher="Debian", offer="debian-12", sku="12-gen2", version="latest")
        with pytest.raises(HttpResponseError) as err:
            arm.compute.virtual_machines.begin_create_or_update(
                "unbuilt", "vm", vm_body("westeurope", nic, image, "builder", pub, "vm")).result()
        assert err.value.status_code == 409
        assert "python -m emulator.guests.qemu.image build" in str(err.value.message)
        assert not (Path(emu.state_dir) / "guests").exists() or not any((Path(emu.state_dir) / "guests").iterdir())
        # the simulated runtime still answers behind the router (Windows guests, the ops endpoint)
        assert emu.ops("GET", "guests")["value"] == []
        assert arm.compute.virtual_machine_images.list(
            "westeurope", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition")
    finally:
        arm.resources.resource_groups.begin_delete("unbuilt").result()
