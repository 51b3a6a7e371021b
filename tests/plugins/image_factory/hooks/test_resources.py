"""ResourceGroupHook against the local Azure: ensure is idempotent, delete starts without waiting."""

from __future__ import annotations

import time
import uuid

import pytest

from image_factory.hooks.resources import ResourceGroupHook
from tests.localazure import LocalAzure
from tests.plugins.image_factory.hooks.conftest import inventory


@pytest.fixture
def hook(azure_conn: str) -> ResourceGroupHook:
    return ResourceGroupHook(azure_conn)


def _wait_gone(hook: ResourceGroupHook, name: str) -> None:
    deadline = time.monotonic() + 60
    while hook.resource_group_exists(name):
        assert time.monotonic() < deadline, f"resource group {name} was never deleted"
        time.sleep(0.2)


def test_ensure_resource_group_twice_creates_one(
    hook: ResourceGroupHook, local_azure: LocalAzure, location: str
) -> None:
    run = uuid.uuid4().hex[:8]
    name = f"rg-hook-{run}"
    try:
        first = hook.ensure_resource_group(name, location, {"run": run})
        second = hook.ensure_resource_group(name, location, {"run": run, "ignored": "on an existing group"})
        assert first == second and first.endswith(f"/resourceGroups/{name}")
        found = inventory(local_azure, "Microsoft.Resources/resourceGroups", run=run)
        assert [g["id"] for g in found] == [first]
        assert hook.resource_group_exists(name)
        listed = hook.list_resource_groups(tag_name="run", tag_value=run)
        assert listed == [{"name": name, "location": location, "tags": {"run": run}}]
    finally:
        hook.begin_delete_resource_group(name)


def test_list_resource_groups_filters_by_tag(hook: ResourceGroupHook, location: str) -> None:
    run = uuid.uuid4().hex[:8]
    names = {"a": f"rg-list-a-{run}", "b": f"rg-list-b-{run}"}
    try:
        hook.ensure_resource_group(names["a"], location, {"sweep": run, "kind": "a"})
        hook.ensure_resource_group(names["b"], location, {"sweep": run, "kind": "b"})
        tagged = {g["name"] for g in hook.list_resource_groups(tag_name="sweep")}
        assert set(names.values()) <= tagged
        assert [
            g["name"]
            for g in hook.list_resource_groups(tag_name="kind", tag_value="b")
            if g["tags"].get("sweep") == run
        ] == [names["b"]]
        assert all("sweep" not in g["tags"] for g in hook.list_resource_groups(tag_name="no-such-tag"))
    finally:
        for name in names.values():
            hook.begin_delete_resource_group(name)


def test_begin_delete_resource_group(hook: ResourceGroupHook, location: str) -> None:
    name = f"rg-del-{uuid.uuid4().hex[:8]}"
    hook.ensure_resource_group(name, location, {})
    assert hook.begin_delete_resource_group(name) is True
    _wait_gone(hook, name)
    assert hook.resource_group_exists(name) is False
    assert hook.begin_delete_resource_group(name) is False
