"""Fixtures of the Microsoft.Storage tests: the storage SDK client, accounts, and data-plane clients for Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.storage import StorageManagementClient
from azure.storage.blob import BlobServiceClient

from tests.localazure import LocalAzure


def unique_account() -> str:
    return f"sa{uuid.uuid4().hex[:12]}"


def account_body(location: str, **extra: Any) -> dict[str, Any]:
    return {"location": location, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", **extra}


def storage_client(hook: Any) -> StorageManagementClient:
    """azure-mgmt-storage pointed where the factory's hook points (its credential, endpoint and CA)."""
    return StorageManagementClient(hook.credential, hook.subscription_id, **hook._client_kwargs())


def blob_service(account: Any, key: str) -> BlobServiceClient:
    """A data-plane client for the account's blob endpoint (Azurite), signing with ``key``."""
    return BlobServiceClient(account.primary_endpoints.blob, credential={"account_name": account.name, "account_key": key})


def first_key(storage: StorageManagementClient, group: str, name: str, key_name: str = "key1") -> str:
    keys = storage.storage_accounts.list_keys(group, name).keys_property
    return next(str(k.value) for k in keys if k.key_name == key_name)


def azurite(emu: LocalAzure) -> dict[str, Any]:
    """What ``GET /_emulator/storage`` says about the Azurite the emulator runs."""
    return dict(emu.ops("GET", "storage"))


@pytest.fixture(scope="session")
def storage(arm) -> StorageManagementClient:  # type: ignore[no-untyped-def]
    return storage_client(arm)


@pytest.fixture
def new_account(storage: StorageManagementClient, group: str, location: str) -> Callable[..., Any]:
    """``new_account(**body)`` → a provisioned account in the test's group (gone with the group)."""
    def make(**extra: Any) -> Any:
        return storage.storage_accounts.begin_create(group, unique_account(), account_body(location, **extra)).result()
    return make
