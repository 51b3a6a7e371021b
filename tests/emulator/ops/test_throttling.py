"""ARM throttling: token buckets, 429 + Retry-After, and the SDK waiting it out."""

from __future__ import annotations

import uuid

import requests


def test_headers_report_remaining_requests(arm, local_azure):
    name = f"thr-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(name, {"location": "westus"})
    token = arm.credential.get_token("https://management.core.windows.net/.default").token
    resp = requests.get(f"{local_azure.endpoint}/subscriptions/{local_azure.info['subscription_id']}/resourcegroups/"
                        f"{name}?api-version=2025-04-01", headers={"Authorization": f"Bearer {token}"},
                        verify=local_azure.ca, timeout=10)
    assert int(resp.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0


def test_enforced_buckets_throttle_and_the_sdk_recovers(arm, local_azure):
    name = f"thr-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(name, {"location": "westus"})
    token = arm.credential.get_token("https://management.core.windows.net/.default").token
    url = (f"{local_azure.endpoint}/subscriptions/{local_azure.info['subscription_id']}/resourcegroups/{name}"
           "?api-version=2025-04-01")
    local_azure.ops("PUT", "throttling", {"enforce": True, "scale": 0.02})  # reads: 5 tokens, refilled 25/s
    try:
        session = requests.Session()
        statuses = [session.get(url, headers={"Authorization": f"Bearer {token}"}, verify=local_azure.ca,
                                timeout=10) for _ in range(40)]
        throttled = [r for r in statuses if r.status_code == 429]
        assert throttled, "a burst over the bucket size must be throttled"
        assert throttled[0].json()["error"]["code"] == "SubscriptionRequestsThrottled"
        assert int(throttled[0].headers["Retry-After"]) >= 1
        # the SDK's retry policy sleeps for Retry-After and gets through
        for _ in range(10):
            assert arm.resources.resource_groups.get(name).name == name
    finally:
        local_azure.ops("PUT", "throttling", {"enforce": False})
    assert local_azure.ops("GET", "throttling")["enforce"] is False
