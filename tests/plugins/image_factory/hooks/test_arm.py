"""The factory's ARM hook: one connection decides real or local Azure; clients come from it."""

from __future__ import annotations

import json

import pytest
from azure.identity import ClientSecretCredential, ManagedIdentityCredential

from image_factory.hooks.arm import AzureResourceManagerHook


def _conn(monkeypatch, conn_id: str, **fields) -> AzureResourceManagerHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "azure", **fields}))
    return AzureResourceManagerHook(conn_id)


def test_local_connection_builds_working_clients(arm, local_azure):
    assert arm.is_local and arm.endpoint == local_azure.endpoint
    ok, message = arm.test_connection()
    assert ok, message
    assert "local Azure" in message
    assert arm.compute._config.base_url == local_azure.endpoint
    assert arm.network._config.base_url == local_azure.endpoint
    assert arm.resources.resource_groups.check_existence("definitely-not-there") is False


def test_local_managed_identity_when_no_service_principal(monkeypatch, local_azure):
    info = local_azure.info
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    hook = _conn(monkeypatch, "local_mi", extra={"endpoint": local_azure.endpoint, "ca_bundle": local_azure.ca,
                                                 "subscriptionId": info["subscription_id"]})
    assert isinstance(hook.credential, ManagedIdentityCredential)
    assert hook.test_connection()[0]


def test_real_azure_connection_uses_public_cloud(monkeypatch):
    hook = _conn(monkeypatch, "real", login="app-id", password="s3cret",
                 extra={"tenantId": "t-1", "subscriptionId": "sub-1"})
    assert not hook.is_local
    assert hook.endpoint == "https://management.azure.com"
    assert isinstance(hook.credential, ClientSecretCredential)
    assert hook.compute._config.base_url == "https://management.azure.com"


def test_bad_connections_name_the_field(monkeypatch, tmp_path):
    hook = _conn(monkeypatch, "nosub", login="a", password="b", extra={"tenantId": "t"})
    with pytest.raises(ValueError, match="'subscriptionId'"):
        _ = hook.compute
    hook = _conn(monkeypatch, "noca", login="a", password="b",
                 extra={"tenantId": "t", "subscriptionId": "s", "endpoint": "https://127.0.0.1:1",
                        "ca_bundle": str(tmp_path / "missing.pem")})
    with pytest.raises(ValueError, match="'ca_bundle'"):
        _ = hook.compute


def test_test_connection_reports_failure_as_text(monkeypatch, local_azure):
    hook = _conn(monkeypatch, "wrongsub", login="a", password="b",
                 extra={"tenantId": local_azure.info["tenant_id"], "subscriptionId": "00000000-0000-0000-0000-000000000000",
                        "endpoint": local_azure.endpoint, "ca_bundle": local_azure.ca})
    ok, message = hook.test_connection()
    assert not ok and "SubscriptionNotFound" in message
