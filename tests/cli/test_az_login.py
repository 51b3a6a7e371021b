"""Signing the Azure CLI in to the local Azure: managed identity (via az-local) and service principal."""

from __future__ import annotations

import pytest

from emulator.services.identity.responses import CLOUD_NAME
from tests.cli.azcli import AZ, AzCli, clean_env, needs_az
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.cli, needs_az]


def test_managed_identity_login_through_az_local(az_local: AzCli, local_azure: LocalAzure):
    account = az_local.ok("account", "show")
    info = local_azure.info
    assert account["environmentName"] == CLOUD_NAME
    assert (account["id"], account["tenantId"]) == (info["subscription_id"], info["tenant_id"])
    assert account["user"]["type"] == "servicePrincipal"
    assert account["user"].get("assignedIdentityInfo") == "MSI"
    cloud = az_local.ok("cloud", "show")
    assert cloud["name"] == CLOUD_NAME and cloud["isActive"] is True
    assert cloud["endpoints"]["resourceManager"].rstrip("/") == local_azure.endpoint


def test_service_principal_login_with_instance_discovery_off(local_azure: LocalAzure, tmp_path):
    """The documented recipe with plain az: custom cloud from metadata, ``core.instance_discovery=false``."""
    info = local_azure.info
    env = {
        **clean_env(),
        "AZURE_CONFIG_DIR": str(tmp_path / "az"),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "REQUESTS_CA_BUNDLE": local_azure.ca,
        "SSL_CERT_FILE": local_azure.ca,
        "ARM_CLOUD_METADATA_URL": f"{local_azure.endpoint}/metadata/endpoints?api-version=2019-05-01",
        "AZURE_CLOUD_NAME": CLOUD_NAME,
    }
    az = AzCli([str(AZ)], env)
    before = local_azure.request_counts()
    az.ok("config", "set", "core.instance_discovery=false", "--only-show-errors")
    accounts = az.ok("login", "--service-principal", "-u", "image-factory-ci", "-p", "not-a-real-secret",
                     "--tenant", info["tenant_id"])
    assert [a["id"] for a in accounts] == [info["subscription_id"]]
    assert accounts[0]["user"] == {"name": "image-factory-ci", "type": "servicePrincipal"}
    assert accounts[0]["cloudName"] == CLOUD_NAME
    after = local_azure.request_counts()
    # MSAL discovered the local authority and got its token from the emulator, not from the internet
    assert after.get("identity/openid/read", 0) > before.get("identity/openid/read", 0)
    assert after.get("identity/oauth2/token", 0) == before.get("identity/oauth2/token", 0) + 1

    name = "cli-sp-login-check"
    assert az.ok("group", "create", "-n", name, "-l", "westeurope")["properties"]["provisioningState"] == "Succeeded"
    assert name in [g["name"] for g in az.ok("group", "list")]
    # the token is cached on disk: later commands make no token calls
    assert local_azure.request_counts().get("identity/oauth2/token", 0) == after.get("identity/oauth2/token", 0)
    az.ok("group", "delete", "-n", name, "--yes")
    assert az.run("group", "exists", "-n", name).stdout.strip() == "false"


def test_service_principal_login_for_a_foreign_tenant_is_refused(local_azure: LocalAzure, tmp_path):
    env = {
        **clean_env(),
        "AZURE_CONFIG_DIR": str(tmp_path / "az"),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_INSTANCE_DISCOVERY": "false",
        "REQUESTS_CA_BUNDLE": local_azure.ca,
        "SSL_CERT_FILE": local_azure.ca,
        "ARM_CLOUD_METADATA_URL": f"{local_azure.endpoint}/metadata/endpoints?api-version=2019-05-01",
        "AZURE_CLOUD_NAME": CLOUD_NAME,
    }
    res = AzCli([str(AZ)], env).run("login", "--service-principal", "-u", "app", "-p", "secret",
                                    "--tenant", "00000000-0000-0000-0000-000000000001")
    assert res.rc != 0
    assert "AADSTS90002" in res.stderr
