"""ARM calls need a bearer token issued by the local Azure's identity endpoints."""

from __future__ import annotations

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.resource.resources import ResourceManagementClient


def _get(local_azure, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    sub = local_azure.info["subscription_id"]
    return requests.get(f"{local_azure.endpoint}/subscriptions/{sub}/resourcegroups?api-version=2025-04-01",
                        headers=headers, verify=local_azure.ca, timeout=10)


def test_missing_and_forged_tokens_are_refused(local_azure):
    missing = _get(local_azure, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AuthenticationFailed"
    forged = _get(local_azure, "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0.c2ln")
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_managed_identity_token_is_accepted(local_azure):
    token = requests.get(f"{local_azure.endpoint}/msi/token", params={"resource": "https://management.core.windows.net/",
                         "api-version": "2019-08-01"}, headers={"X-IDENTITY-HEADER": "x"}, verify=local_azure.ca,
                         timeout=10).json()
    assert token["token_type"] == "Bearer" and int(token["expires_on"]) > 0
    assert _get(local_azure, token["access_token"]).status_code == 200


def test_sdk_with_foreign_token_gets_client_authentication_error(local_azure):
    class Foreign:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("not-a-token-from-here", 4102444800)

    client = ResourceManagementClient(Foreign(), local_azure.info["subscription_id"], base_url=local_azure.endpoint,
                                      connection_verify=local_azure.ca)
    with pytest.raises(ClientAuthenticationError):
        client.resource_groups.get("anything")


def test_unknown_subscription_is_not_found(local_azure, arm):
    token = arm.credential.get_token("https://management.core.windows.net/.default").token
    resp = requests.get(f"{local_azure.endpoint}/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups"
                        "?api-version=2025-04-01", headers={"Authorization": f"Bearer {token}"},
                        verify=local_azure.ca, timeout=10)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "SubscriptionNotFound"


def test_cloud_metadata_for_clients(local_azure):
    listed = requests.get(f"{local_azure.endpoint}/metadata/endpoints?api-version=2019-05-01", verify=local_azure.ca,
                          timeout=10).json()
    single = requests.get(f"{local_azure.endpoint}//metadata/endpoints?api-version=2022-09-01", verify=local_azure.ca,
                          timeout=10).json()
    assert isinstance(listed, list) and listed[0]["resourceManager"] == local_azure.endpoint + "/"
    assert single["suffixes"] is not None and single["authentication"]["audiences"]
