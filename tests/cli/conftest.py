"""Fixtures for driving the Azure CLI against the session's local Azure."""

from __future__ import annotations

import pytest

from tests.cli.azcli import AZ_LOCAL, AZ_VENV, AzCli, clean_env
from tests.localazure import LocalAzure


@pytest.fixture(scope="session")
def az_local(local_azure: LocalAzure) -> AzCli:
    """``scripts/az-local`` pointed at the session's local Azure: it signs in with the managed identity."""
    env = {**clean_env(), "LOCAL_AZURE_STATE_DIR": str(local_azure.state_dir), "AZ_VENV": str(AZ_VENV)}
    return AzCli(["bash", str(AZ_LOCAL)], env)
