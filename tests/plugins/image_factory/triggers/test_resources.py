"""ResourceGroupDeletedTrigger against the local Azure."""

from __future__ import annotations

import time
import uuid

from image_factory.triggers.resources import ResourceGroupDeletedTrigger
from tests.plugins.image_factory.triggers.conftest import first_event, round_trip


def test_deleted_group_ends_the_wait(arm, azure_conn, location):
    name = f"test-del-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(name, {"location": location})
    arm.resources.resource_groups.begin_delete(name)  # not waited for: the trigger waits
    event = first_event(ResourceGroupDeletedTrigger(azure_conn, name, timeout_seconds=120, poll_interval=0.05))
    assert event == {"status": "success", "resource_group": name, "seconds": event["seconds"]}
    assert arm.resources.resource_groups.check_existence(name) is False


def test_group_still_there_times_out_by_name(arm, azure_conn, group):
    trigger = ResourceGroupDeletedTrigger(
        azure_conn, group, timeout_seconds=30, poll_interval=0.05, started_at=time.time() - 60
    )
    event = first_event(round_trip(trigger))
    assert event["status"] == "error", event
    assert group in event["message"] and "Timed out after 30 s" in event["message"]
    assert "Succeeded" in event["message"]
    assert arm.resources.resource_groups.check_existence(group) is True


def test_serialize_keeps_started_at_and_primitives():
    trigger = ResourceGroupDeletedTrigger("conn", "rg", timeout_seconds=1800)
    classpath, kwargs = trigger.serialize()
    assert classpath == "image_factory.triggers.resources.ResourceGroupDeletedTrigger"
    assert isinstance(kwargs["started_at"], float) and kwargs["started_at"] <= time.time()
    assert round_trip(trigger).serialize()[1]["started_at"] == kwargs["started_at"]
