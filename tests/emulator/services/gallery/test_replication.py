"""Replication watched on a local Azure whose clock runs at 2% of Azure's: progress, order, updates,
regional failures and a restart in the middle of it all. Durations here (VHD of 8 MiB = 1 GiB
billed): gallery work ~0.3 s, the source region ~0.9 s, every other region 3-5 s."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulator.services.gallery.conftest import definition_body, fixed_vhd, unique, upload, vhd_version_body

pytestmark = pytest.mark.slow
LOCATION = "westeurope"


@pytest.fixture
def timed_setup(timed_arm, timed_azure, tmp_path: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    group = unique("test-timed-")
    timed_arm.resources.resource_groups.create_or_update(group, {"location": LOCATION})
    gallery = unique("gal")
    timed_arm.compute.galleries.begin_create_or_update(group, gallery, {"location": LOCATION}).result()
    timed_arm.compute.gallery_images.begin_create_or_update(group, gallery, "img", definition_body(LOCATION)).result()
    return {"group": group, "gallery": gallery, "url": upload(timed_azure, fixed_vhd(tmp_path))}


def _status(arm, s: dict[str, Any], version: str) -> tuple[str, str, dict[str, tuple[str, int]]]:  # type: ignore[no-untyped-def]
    v = arm.compute.gallery_image_versions.get(s["group"], s["gallery"], "img", version, expand="ReplicationStatus")
    rs = v.replication_status
    return v.provisioning_state, rs.aggregated_state, {x.region: (x.state, x.progress) for x in rs.summary}


def _wait(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_progress_is_visible_and_the_source_region_completes_first(timed_arm, timed_setup):
    s = timed_setup
    poller = timed_arm.compute.gallery_image_versions.begin_create_or_update(
        s["group"], s["gallery"], "img", "1.0.0", vhd_version_body(LOCATION, s["url"], [LOCATION, "eastus", "japaneast"]))
    state, aggregated, regions = _status(timed_arm, s, "1.0.0")
    assert (state, aggregated) == ("Creating", "InProgress")
    assert all(st == "Replicating" and 0 <= p < 100 for st, p in regions.values())

    _wait(lambda: _status(timed_arm, s, "1.0.0")[2]["West Europe"][0] == "Completed")
    state, aggregated, regions = _status(timed_arm, s, "1.0.0")
    assert (state, aggregated) == ("Creating", "InProgress")  # Creating until every region is done
    assert regions["East US"][0] == "Replicating" and 0 < regions["East US"][1] < 100
    assert regions["Japan East"][0] == "Replicating"
    progress_before = regions["East US"][1]
    time.sleep(0.5)
    assert _status(timed_arm, s, "1.0.0")[2]["East US"][1] > progress_before  # it moves with the clock

    done = poller.result()
    assert done.provisioning_state == "Succeeded"
    state, aggregated, regions = _status(timed_arm, s, "1.0.0")
    assert aggregated == "Completed" and set(regions.values()) == {("Completed", 100)}


def test_patch_adding_a_region_replicates_only_that_region(timed_arm, timed_setup):
    s = timed_setup
    versions = timed_arm.compute.gallery_image_versions
    versions.begin_create_or_update(s["group"], s["gallery"], "img", "1.0.0",
                                    vhd_version_body(LOCATION, s["url"])).result()
    poller = versions.begin_update(s["group"], s["gallery"], "img", "1.0.0", {"properties": {"publishingProfile": {
        "targetRegions": [{"name": LOCATION}, {"name": "westus2", "regionalReplicaCount": 3}]}}})
    state, aggregated, regions = _status(timed_arm, s, "1.0.0")
    assert (state, aggregated) == ("Updating", "InProgress")
    assert regions["West Europe"] == ("Completed", 100)
    assert regions["West US 2"][0] == "Replicating"
    after = poller.result()
    assert after.provisioning_state == "Succeeded"
    assert after.publishing_profile.target_regions[1].regional_replica_count == 3
    assert _status(timed_arm, s, "1.0.0")[2]["West US 2"] == ("Completed", 100)


def test_a_failing_region_fails_the_version(timed_arm, timed_azure, timed_setup):
    s = timed_setup
    timed_azure.ops("POST", "replication/faults", {"region": "eastus", "code": "ReplicationRegionOutage",
                                                    "message": "East US storage is unavailable.", "count": 1})
    poller = timed_arm.compute.gallery_image_versions.begin_create_or_update(
        s["group"], s["gallery"], "img", "1.0.0", vhd_version_body(LOCATION, s["url"], [LOCATION, "eastus"]))
    _wait(lambda: _status(timed_arm, s, "1.0.0")[2]["East US"][0] == "Failed")
    state, aggregated, regions = _status(timed_arm, s, "1.0.0")
    assert (state, aggregated) == ("Failed", "Failed") and regions["East US"] == ("Failed", 40)
    assert regions["West Europe"] == ("Completed", 100)
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert err.value.error.code == "ReplicationRegionOutage"
    assert "East US storage is unavailable." in err.value.error.message
    v = timed_arm.compute.gallery_image_versions.get(s["group"], s["gallery"], "img", "1.0.0",
                                                     expand="ReplicationStatus")
    assert v.provisioning_state == "Failed"
    assert [x.details for x in v.replication_status.summary if x.region == "East US"] == [
        "East US storage is unavailable."]


def test_replication_survives_a_restart(timed_arm, timed_azure, timed_setup):
    s = timed_setup
    timed_azure.settings(time_factor=0.06)  # remote regions take 9-15 s here: room for a restart in the middle
    try:
        timed_arm.compute.gallery_image_versions.begin_create_or_update(
            s["group"], s["gallery"], "img", "5.0.0", vhd_version_body(LOCATION, s["url"], [LOCATION, "southeastasia"]))
        _wait(lambda: _status(timed_arm, s, "5.0.0")[2]["West Europe"][0] == "Completed")
        timed_azure.restart()
        state, aggregated, regions = _status(timed_arm, s, "5.0.0")
        assert state == "Creating" and aggregated == "InProgress"
        assert regions["West Europe"] == ("Completed", 100) and regions["Southeast Asia"][0] == "Replicating"
        _wait(lambda: _status(timed_arm, s, "5.0.0")[0] == "Succeeded")
        assert _status(timed_arm, s, "5.0.0")[1] == "Completed"
    finally:
        timed_azure.settings(time_factor=0.02)


def test_update_during_create_extends_the_create_operation(timed_arm, timed_setup):
    """Adding a region while the version is still Creating: both operations end when all regions are done."""
    s = timed_setup
    versions = timed_arm.compute.gallery_image_versions
    create = versions.begin_create_or_update(s["group"], s["gallery"], "img", "6.0.0",
                                             vhd_version_body(LOCATION, s["url"]))
    update = versions.begin_update(s["group"], s["gallery"], "img", "6.0.0", {"properties": {"publishingProfile": {
        "targetRegions": [{"name": LOCATION}, {"name": "australiaeast"}]}}})
    assert _status(timed_arm, s, "6.0.0")[0] == "Creating"  # still Creating: it never finished
    created = create.result()
    assert created.provisioning_state == "Succeeded"
    assert _status(timed_arm, s, "6.0.0")[2]["Australia East"] == ("Completed", 100)
    assert update.result().provisioning_state == "Succeeded"


def test_nothing_can_be_written_while_deleting(timed_arm, timed_setup):
    s = timed_setup
    versions = timed_arm.compute.gallery_image_versions
    body = vhd_version_body(LOCATION, s["url"])
    versions.begin_create_or_update(s["group"], s["gallery"], "img", "7.0.0", body).result()
    deleting = versions.begin_delete(s["group"], s["gallery"], "img", "7.0.0")  # ~1.2 s here
    assert versions.get(s["group"], s["gallery"], "img", "7.0.0").provisioning_state == "Deleting"
    with pytest.raises(HttpResponseError) as err:
        versions.begin_create_or_update(s["group"], s["gallery"], "img", "7.0.0", body).result()
    assert err.value.status_code == 409 and err.value.error.code == "OperationNotAllowed"
    deleting.result()
    assert "7.0.0" not in [v.name for v in versions.list_by_gallery_image(s["group"], s["gallery"], "img")]
