"""The /_emulator operations API: inventory by tag, request log, settings, reset."""

from __future__ import annotations

import uuid

import pytest

from tests.localazure import LocalAzure


def test_inventory_by_tag_and_request_counts(arm, local_azure):
    run = uuid.uuid4().hex[:8]
    name = f"inv-{run}"
    arm.resources.resource_groups.create_or_update(name, {"location": "westus", "tags": {"run": run}})
    found = local_azure.ops("GET", "inventory", tag=f"run={run}")
    assert [item["id"].rsplit("/", 1)[-1] for item in found["value"]] == [name]
    assert local_azure.ops("GET", "inventory", tag="run=nope")["count"] == 0
    counts = local_azure.request_counts()
    assert counts["Microsoft.Resources/subscriptions/resourceGroups/write"] >= 1


def test_settings_are_validated(local_azure):
    with pytest.raises(RuntimeError, match="retry_after"):
        local_azure.settings(retry_after=0.5)
    with pytest.raises(RuntimeError, match="Unknown setting"):
        local_azure.settings(speed=3)


def test_reset_forgets_everything(tmp_path, real_azure):
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path / "reset").start()
    try:
        emu.ops("POST", "faults", {"match": "*", "status": 500, "probability": 0.0})
        import requests

        token = requests.get(f"{emu.endpoint}/msi/token", verify=emu.ca, timeout=10).json()["access_token"]
        url = f"{emu.endpoint}/subscriptions/{emu.info['subscription_id']}/resourcegroups/r1?api-version=2025-04-01"
        assert requests.put(url, json={"location": "westus"}, headers={"Authorization": f"Bearer {token}"},
                            verify=emu.ca, timeout=10).status_code == 201
        assert emu.ops("GET", "inventory")["count"] == 1
        emu.ops("POST", "reset")
        assert emu.ops("GET", "inventory")["count"] == 0
        assert emu.ops("GET", "faults")["value"] == []
        # the signing key is kept: tokens issued before the reset still work
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=emu.ca,
                            timeout=10).status_code == 404
    finally:
        emu.stop()
