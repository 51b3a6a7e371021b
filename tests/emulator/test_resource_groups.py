"""Resource groups through the real azure-mgmt-resource SDK."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.azure


def test_create_get_list_and_tag(arm, location):
    name = f"test-{uuid.uuid4().hex[:8]}"
    rgs = arm.resources.resource_groups
    created = rgs.create_or_update(name, {"location": location, "tags": {"factory": "tests", "run": "1"}})
    assert created.name == name and created.location == location
    assert created.properties.provisioning_state == "Succeeded"
    assert rgs.get(name).tags == {"factory": "tests", "run": "1"}
    assert name in [g.name for g in rgs.list()]
    assert rgs.check_existence(name) is True
    rgs.update(name, {"tags": {"factory": "tests", "run": "2"}})
    assert rgs.get(name).tags["run"] == "2"
    assert [g.name for g in rgs.list(filter="tagName eq 'run' and tagValue eq '2'")] == [name]
    rgs.begin_delete(name).result()
    assert rgs.check_existence(name) is False


def test_missing_group_is_resource_group_not_found(arm):
    with pytest.raises(ResourceNotFoundError) as err:
        arm.resources.resource_groups.get("no-such-group-here")
    assert err.value.error.code == "ResourceGroupNotFound"
    assert "Resource group 'no-such-group-here' could not be found." in str(err.value)


def test_invalid_name_and_location_are_rejected(arm):
    with pytest.raises(HttpResponseError) as err:
        arm.resources.resource_groups.create_or_update("bad/name.", {"location": "westeurope"})
    assert err.value.status_code in (400, 404)
    with pytest.raises(HttpResponseError) as err:
        arm.resources.resource_groups.create_or_update("ok-name", {"location": "atlantis"})
    assert err.value.error.code == "LocationNotAvailableForResourceType"


def test_concurrent_requests_lose_nothing(arm):
    """Many clients at once: every write lands, and racing creates of one name make one group."""
    from concurrent.futures import ThreadPoolExecutor

    run = uuid.uuid4().hex[:6]
    names = [f"conc-{run}-{i}" for i in range(24)]
    rgs = arm.resources.resource_groups
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: rgs.create_or_update(n, {"location": "westus", "tags": {"run": run}}), names))
        raced = list(pool.map(lambda _: rgs.create_or_update(f"conc-{run}-same", {"location": "westus"}), range(8)))
    assert {g.name for g in rgs.list(filter=f"tagName eq 'run' and tagValue eq '{run}'")} == set(names)
    assert {g.id for g in raced} == {rgs.get(f"conc-{run}-same").id}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: rgs.begin_delete(n).result(), [*names, f"conc-{run}-same"]))
    assert not any(rgs.check_existence(n) for n in names)
