"""The factory's ARM hook: one connection decides real or local Azure; clients come from it."""

from __future__ import annotations

import json
import logging

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
    hook = _conn(
        monkeypatch,
        "local_mi",
        extra={
            "endpoint": local_azure.endpoint,
            "ca_bundle": local_azure.ca,
            "subscriptionId": info["subscription_id"],
        },
    )
    assert isinstance(hook.credential, ManagedIdentityCredential)
    assert hook.test_connection()[0]


def test_real_azure_connection_uses_public_cloud(monkeypatch):
    hook = _conn(
        monkeypatch, "real", login="app-id", password="s3cret", extra={"tenantId": "t-1", "subscriptionId": "sub-1"}
    )
    assert not hook.is_local
    assert hook.endpoint == "https://management.azure.com"
    assert isinstance(hook.credential, ClientSecretCredential)
    assert hook.compute._config.base_url == "https://management.azure.com"


def test_bad_connections_name_the_field(monkeypatch, tmp_path):
    hook = _conn(monkeypatch, "nosub", login="a", password="b", extra={"tenantId": "t"})
    with pytest.raises(ValueError, match="'subscriptionId'"):
        _ = hook.compute
    hook = _conn(
        monkeypatch,
        "noca",
        login="a",
        password="b",
        extra={
            "tenantId": "t",
            "subscriptionId": "s",
            "endpoint": "https://127.0.0.1:1",
            "ca_bundle": str(tmp_path / "missing.pem"),
        },
    )
    with pytest.raises(ValueError, match="'ca_bundle'"):
        _ = hook.compute


def test_test_connection_reports_failure_as_text(monkeypatch, local_azure):
    hook = _conn(
        monkeypatch,
        "wrongsub",
        login="a",
        password="b",
        extra={
            "tenantId": local_azure.info["tenant_id"],
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "endpoint": local_azure.endpoint,
            "ca_bundle": local_azure.ca,
        },
    )
    ok, message = hook.test_connection()
    assert not ok and "SubscriptionNotFound" in message


# async clients (triggers) ----------------------------------------------------------------------
def _run(coro):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(asyncio.wait_for(coro, 60))


def test_async_clients_read_the_connection_without_the_sync_path(monkeypatch, arm, azure_conn, group, caplog):
    hook = AzureResourceManagerHook(azure_conn)

    def blocking(*_a, **_k):  # the triggerer's loop must never take the sync path
        raise AssertionError("sync get_connection called from async code")

    monkeypatch.setattr(hook, "get_connection", blocking)

    async def use() -> tuple[list[str], object, object]:
        async with hook.async_clients() as clients:
            names = [g.name async for g in clients.resources.resource_groups.list()]
            _ = [vm async for vm in clients.compute.virtual_machines.list(group)]
            transports = (clients.compute._client._pipeline._transport, clients.resources._client._pipeline._transport)
            assert all(t.session is not None for t in transports)  # both really talked to ARM
        return names, *transports

    with caplog.at_level(logging.INFO, logger="azure.core.pipeline.policies.http_logging_policy"):
        names, compute_transport, resources_transport = _run(use())
    # a trigger's log is its progress: the aio clients log requests only at DEBUG
    assert not [r for r in caplog.records if r.name.endswith("http_logging_policy") and r.levelno >= logging.INFO]
    assert group in names
    assert hook.is_local and hook.endpoint == arm.endpoint
    # leaving the block closed the aiohttp sessions
    assert getattr(compute_transport, "session", None) is None
    assert getattr(resources_transport, "session", None) is None


def test_async_credentials_follow_the_sync_choice(monkeypatch, local_azure):
    from azure.identity.aio import ClientSecretCredential as AioSecret
    from azure.identity.aio import DefaultAzureCredential as AioDefault
    from azure.identity.aio import ManagedIdentityCredential as AioManaged

    real_sp = _conn(
        monkeypatch, "real_sp", login="app", password="s3cret", extra={"tenantId": "t", "subscriptionId": "s"}
    )
    real_default = _conn(monkeypatch, "real_default", extra={"subscriptionId": "s"})
    info = local_azure.info
    local_mi = _conn(
        monkeypatch,
        "local_mi_async",
        extra={
            "endpoint": local_azure.endpoint,
            "ca_bundle": local_azure.ca,
            "subscriptionId": info["subscription_id"],
        },
    )
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)

    async def kinds() -> list[type]:
        found = []
        for hook in (real_sp, real_default, local_mi):
            await hook.aload_connection()
            credential = hook._async_credential()
            found.append(type(credential))
            await credential.close()
        return found

    assert _run(kinds()) == [AioSecret, AioDefault, AioManaged]
    assert isinstance(real_sp.credential, ClientSecretCredential)  # the sync choice is unchanged

    async def signed_in_with_managed_identity() -> bool:
        async with local_mi.async_clients() as clients:
            return await clients.resources.resource_groups.check_existence("definitely-not-there")

    assert _run(signed_in_with_managed_identity()) is False


# real Azure identities: which azure.identity credential each connection builds (no network) ----------
def _self_signed_pem(path) -> str:  # type: ignore[no-untyped-def]
    """A certificate + private key PEM, as a service principal's certificate file would hold."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "image-factory")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _async_kind(hook: AzureResourceManagerHook) -> type:
    async def build() -> type:
        credential = hook._async_credential()
        await credential.close()
        return type(credential)

    return _run(build())  # type: ignore[no-any-return]


@pytest.fixture
def no_pod_identity(monkeypatch):  # type: ignore[no-untyped-def]
    """No AKS workload identity in the environment, whatever the machine running the tests has."""
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)


def test_service_principal_with_a_certificate(monkeypatch, tmp_path, no_pod_identity):
    from azure.identity import CertificateCredential
    from azure.identity.aio import CertificateCredential as AioCertificate

    pem = _self_signed_pem(tmp_path / "sp.pem")
    hook = _conn(monkeypatch, "real_cert", login="app-id",
                 extra={"tenantId": "t-1", "subscriptionId": "s", "client_certificate_path": pem})
    assert isinstance(hook.credential, CertificateCredential)
    assert _async_kind(hook) is AioCertificate
    # the password field, when set, is a client secret: that service principal wins over the certificate
    with_secret = _conn(monkeypatch, "real_cert_secret", login="app-id", password="s3cret",
                        extra={"tenantId": "t-1", "subscriptionId": "s", "client_certificate_path": pem})
    assert isinstance(with_secret.credential, ClientSecretCredential)


def test_user_assigned_managed_identity_uses_its_client_id(monkeypatch, no_pod_identity):
    from azure.identity.aio import ManagedIdentityCredential as AioManaged

    hook = _conn(monkeypatch, "real_uami", extra={"subscriptionId": "s", "managed_identity_client_id": "mi-client"})
    assert hook._credential_recipe() == ("ManagedIdentityCredential", {"client_id": "mi-client"})
    assert isinstance(hook.credential, ManagedIdentityCredential)
    assert _async_kind(hook) is AioManaged


def test_system_assigned_identity_goes_through_default_azure_credential(monkeypatch, no_pod_identity):
    from azure.identity import DefaultAzureCredential

    hook = _conn(monkeypatch, "real_sami", extra={"subscriptionId": "s"})
    assert isinstance(hook.credential, DefaultAzureCredential)


def test_workload_identity_from_the_pod_environment(monkeypatch, tmp_path, no_pod_identity):
    from azure.identity import WorkloadIdentityCredential
    from azure.identity.aio import WorkloadIdentityCredential as AioWorkload

    token = tmp_path / "azure-identity-token"
    token.write_text("federated-token")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token))
    monkeypatch.setenv("AZURE_CLIENT_ID", "wi-client")
    monkeypatch.setenv("AZURE_TENANT_ID", "wi-tenant")
    hook = _conn(monkeypatch, "real_wi", extra={"subscriptionId": "s"})
    assert hook._credential_recipe() == ("WorkloadIdentityCredential", {"tenant_id": None, "client_id": None})
    assert isinstance(hook.credential, WorkloadIdentityCredential)
    assert _async_kind(hook) is AioWorkload
    # the connection may name another identity federated to the same service account token
    other = _conn(monkeypatch, "real_wi_other",
                  extra={"subscriptionId": "s", "tenantId": "t-2", "managed_identity_client_id": "other-client"})
    assert other._credential_recipe() == ("WorkloadIdentityCredential", {"tenant_id": "t-2", "client_id": "other-client"})
    # an explicit service principal still wins over the pod's identity
    sp = _conn(monkeypatch, "real_wi_sp", login="app", password="s3cret", extra={"tenantId": "t", "subscriptionId": "s"})
    assert isinstance(sp.credential, ClientSecretCredential)
