"""ReplicationTrigger against the local Azure: all regions done, a region failing, a region too slow."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from image_factory.triggers.gallery import ReplicationTrigger
from tests.emulator.services.gallery.conftest import definition_body, fixed_vhd, unique, upload, vhd_version_body
from tests.localazure import LocalAzure
from tests.plugins.image_factory.triggers.conftest import TIMED_CONN, first_event, round_trip

LOCATION = "westeurope"
REGIONS = [LOCATION, "eastus"]


def _gallery(arm: Any, emu: LocalAzure, group: str, tmp_path: Path) -> dict[str, str]:
    """A gallery with one definition, and a VHD blob to make versions from."""
    gallery = unique("gal")
    arm.compute.galleries.begin_create_or_update(group, gallery, {"location": LOCATION}).result()
    arm.compute.gallery_images.begin_create_or_update(group, gallery, "img", definition_body(LOCATION)).result()
    return {"group": group, "gallery": gallery, "url": upload(emu, fixed_vhd(tmp_path))}


def _begin_version(arm: Any, g: dict[str, str], version: str, regions: list[str] = REGIONS) -> None:
    """Create the version and return at once: replication continues in the emulator."""
    arm.compute.gallery_image_versions.begin_create_or_update(
        g["group"], g["gallery"], "img", version, vhd_version_body(LOCATION, g["url"], regions)
    )


def _trigger(conn: str, g: dict[str, str], version: str, **kw: Any) -> ReplicationTrigger:
    args: dict[str, Any] = {"region_timeout_seconds": 120, "poll_interval": 0.05, **kw}
    return ReplicationTrigger(conn, g["group"], g["gallery"], "img", version, **args)


@pytest.fixture
def replication_faults(local_azure: LocalAzure) -> Any:
    yield local_azure
    local_azure.ops("DELETE", "replication/faults")


def test_success_reports_every_region_completed(arm, azure_conn, local_azure, group, tmp_path):
    g = _gallery(arm, local_azure, group, tmp_path)
    _begin_version(arm, g, "1.0.0")
    event = first_event(_trigger(azure_conn, g, "1.0.0"))
    assert event["status"] == "success", event
    assert event["version_id"].endswith("/images/img/versions/1.0.0")
    assert set(event["regions"]) == set(REGIONS)
    for region in event["regions"].values():
        assert region["state"] == "Completed" and region["progress"] == 100
        assert isinstance(region["seconds"], float) and region["seconds"] >= 0


def test_a_failed_region_is_named_in_the_error(arm, azure_conn, replication_faults, group, tmp_path):
    replication_faults.ops("POST", "replication/faults", {"region": "eastus", "message": "Injected outage in East US."})
    g = _gallery(arm, replication_faults, group, tmp_path)
    _begin_version(arm, g, "1.0.0")
    event = first_event(_trigger(azure_conn, g, "1.0.0"))
    assert event["status"] == "error", event
    assert event["failed_regions"] == ["eastus"]
    assert "eastus" in event["message"] and "Injected outage in East US." in event["message"]
    assert event["regions"]["eastus"]["state"] == "Failed"


def test_a_missing_version_is_an_error_not_a_wait(arm, azure_conn, local_azure, group, tmp_path):
    g = _gallery(arm, local_azure, group, tmp_path)
    event = first_event(_trigger(azure_conn, g, "9.9.9", region_timeout_seconds=3600))
    assert event["status"] == "error" and "no longer exists" in event["message"]


def test_regions_not_done_by_the_deadline_time_out_by_name(timed_arm, timed_azure, tmp_path):
    group = unique("test-timed-")
    timed_arm.resources.resource_groups.create_or_update(group, {"location": LOCATION})
    g = _gallery(timed_arm, timed_azure, group, tmp_path)
    _begin_version(timed_arm, g, "1.0.0", [LOCATION, "eastus", "japaneast"])
    # started 100 s ago with a 10 s timeout: a triggerer restart must not reset that clock
    trigger = round_trip(_trigger(TIMED_CONN, g, "1.0.0", region_timeout_seconds=10, started_at=time.time() - 100))
    event = first_event(trigger)
    assert event["status"] == "error", event
    assert {"eastus", "japaneast"} <= set(event["timed_out_regions"])  # 3-5 s regions, polled at once
    assert "timed out after 10 s" in event["message"] and "eastus" in event["message"]


def test_progress_is_logged_only_when_it_changes(timed_arm, timed_azure, tmp_path):
    group = unique("test-timed-")
    timed_arm.resources.resource_groups.create_or_update(group, {"location": LOCATION})
    g = _gallery(timed_arm, timed_azure, group, tmp_path)
    _begin_version(timed_arm, g, "1.0.0")
    reads_before = timed_azure.request_counts().get("Microsoft.Compute/galleries/images/versions/read", 0)
    trigger = _trigger(TIMED_CONN, g, "1.0.0", poll_interval=0.02)
    trigger.SETTLE_SECONDS = 0.0  # watch from the very start: the settle delay would miss the progress
    with capture_logs() as logs:  # a trigger logs through structlog, as in the triggerer
        event = first_event(trigger)
    polls = timed_azure.request_counts()["Microsoft.Compute/galleries/images/versions/read"] - reads_before
    assert event["status"] == "success", event
    seen: dict[str, list[str]] = {}
    for entry in logs:
        text = str(entry["event"])
        if text.startswith("Replication to "):
            region, _, what = text.removeprefix("Replication to ").partition(": ")
            seen.setdefault(region, []).append(what)
    assert set(seen) == set(REGIONS)
    for region, lines in seen.items():
        assert all(a != b for a, b in pairwise(lines)), (region, lines)
        assert lines[-1] == "Completed 100%"
    assert any(line.startswith("Replicating ") and line != "Replicating 0%" for line in seen["eastus"])
    assert len(seen["westeurope"]) < polls  # polled more often than anything changed there
    # the remote region took longer than the source region, measured from started_at
    assert event["regions"]["eastus"]["seconds"] >= event["regions"]["westeurope"]["seconds"]


def test_serialize_round_trip_keeps_the_clock():
    trigger = ReplicationTrigger(
        "conn", "rg", "gal", "img", "1.2.3", region_timeout_seconds=900, poll_interval=30, started_at=1_700_000_000.5
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "image_factory.triggers.gallery.ReplicationTrigger"
    assert kwargs["started_at"] == 1_700_000_000.5 and kwargs["region_timeout_seconds"] == 900
    round_trip(trigger)
