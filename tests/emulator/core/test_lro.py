"""The long-running-operation protocol, seen through the SDK and on the wire."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
import requests
from azure.identity import ClientSecretCredential
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.localazure import LocalAzure


@pytest.fixture(scope="module")
def slow_azure(tmp_path_factory, real_azure):
    """A second local Azure whose operations take real (scaled) time: a group delete takes ~3 s."""
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path_factory.mktemp("slow-azure"), time_factor=0.15).start()
    yield emu
    emu.stop()


def _client(emu: LocalAzure) -> ResourceManagementClient:
    info = emu.info
    cred = ClientSecretCredential(info["tenant_id"], "tests", "secret", authority=emu.endpoint,
                                  disable_instance_discovery=True, connection_verify=emu.ca)
    return ResourceManagementClient(cred, info["subscription_id"], base_url=emu.endpoint, connection_verify=emu.ca,
                                    credential_scopes=["https://management.core.windows.net/.default"])


def test_group_delete_reports_in_progress_then_done(slow_azure):
    client = _client(slow_azure)
    name = f"lro-{uuid.uuid4().hex[:8]}"
    client.resource_groups.create_or_update(name, {"location": "westus"})
    poller = client.resource_groups.begin_delete(name)
    assert not poller.done()
    assert client.resource_groups.get(name).properties.provisioning_state == "Deleting"
    started = time.monotonic()
    poller.result()
    assert time.monotonic() - started > 1.0
    assert not client.resource_groups.check_existence(name)
    log = slow_azure.ops("GET", "requests")["entries"]
    polls = [e for e in log if e["operation"] == "Microsoft.Resources/operationResults/read"]
    assert [p["status"] for p in polls][-1] == 200
    assert 202 in [p["status"] for p in polls]
    # azure-core polls once at once, then never sooner than Retry-After (1 s) apart
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(polls[1:])]
    assert all(g >= 0.95 for g in gaps), gaps


def test_in_progress_answers_carry_retry_after_and_status_shape(slow_azure):
    client = _client(slow_azure)
    name = f"lro-{uuid.uuid4().hex[:8]}"
    client.resource_groups.create_or_update(name, {"location": "westus"})
    token = client._config.credential.get_token("https://management.core.windows.net/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{slow_azure.endpoint}/subscriptions/{slow_azure.info['subscription_id']}/resourcegroups/{name}"
    first = requests.delete(url + "?api-version=2025-04-01", headers=headers, verify=slow_azure.ca, timeout=10)
    assert first.status_code == 202
    assert first.headers["Retry-After"] == "1"
    poll = requests.get(first.headers["Location"], headers=headers, verify=slow_azure.ca, timeout=10)
    assert poll.status_code == 202 and poll.headers["Retry-After"] == "1"
    deadline = time.time() + 20
    while poll.status_code == 202 and time.time() < deadline:
        time.sleep(0.5)
        poll = requests.get(first.headers["Location"], headers=headers, verify=slow_azure.ca, timeout=10)
    assert poll.status_code == 200


def test_operation_finishes_after_a_restart(slow_azure):
    client = _client(slow_azure)
    name = f"lro-{uuid.uuid4().hex[:8]}"
    client.resource_groups.create_or_update(name, {"location": "westus"})
    client.resource_groups.begin_delete(name)
    slow_azure.restart()
    deadline = time.time() + 20
    client = _client(slow_azure)
    while client.resource_groups.check_existence(name) and time.time() < deadline:
        time.sleep(0.3)
    assert not client.resource_groups.check_existence(name)


def test_state_and_tokens_survive_restart(slow_azure):
    client = _client(slow_azure)
    name = f"keep-{uuid.uuid4().hex[:8]}"
    client.resource_groups.create_or_update(name, {"location": "westus", "tags": {"k": "v"}})
    token = client._config.credential.get_token("https://management.core.windows.net/.default").token
    slow_azure.restart()
    assert client.resource_groups.get(name).tags == {"k": "v"}
    resp = requests.get(f"{slow_azure.endpoint}/subscriptions/{slow_azure.info['subscription_id']}/resourcegroups/{name}"
                        "?api-version=2025-04-01", headers={"Authorization": f"Bearer {token}"}, verify=slow_azure.ca,
                        timeout=10)
    assert resp.status_code == 200
