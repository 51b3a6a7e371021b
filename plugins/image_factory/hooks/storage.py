"""Storage accounts, containers and blobs: where an imported VHD is staged as a page blob.

The account and container are ARM resources (azure-mgmt-storage); the blob is data-plane
(azure-storage-blob), reached at the account's own ``primary_endpoints.blob``, so the same code
talks to Azure and to the local Azure's Azurite. The data plane signs with the account key from
``list_keys``: it is masked in task logs and stays inside the hook (never logged or returned).
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from image_factory.hooks.arm import AzureResourceManagerHook
from image_factory.hooks.lookup import get_or_none

if TYPE_CHECKING:
    from azure.mgmt.storage import StorageManagementClient
    from azure.storage.blob import BlobClient

ACCOUNT_KIND = "StorageV2"
ACCOUNT_SKU = "Standard_LRS"
BLOB_CONNECTIONS = 64  # pooled connections per blob client: enough for the upload's largest thread count
READ_BLOCK = 1024 * 1024
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")


def check_names(account: str, container: str | None = None, blob: str | None = None) -> None:
    """Azure's rules for the three names, checked before any request so the error says which one is wrong."""
    if not _ACCOUNT.match(account):
        raise ValueError(f"storage_account: {account!r} must be 3-24 lowercase letters and digits")
    if container is not None and not _CONTAINER.match(container):
        raise ValueError(f"container: {container!r} must be 3-63 lowercase letters, digits and single hyphens, "
                         "starting and ending with a letter or digit")
    if blob is not None and not 1 <= len(blob) <= 1024:
        raise ValueError(f"blob: the name must be 1-1024 characters, got {len(blob)}")


class StorageHook(AzureResourceManagerHook):
    """Ensure the staging account and container, and hand out clients for blobs in them."""

    def __init__(self, azure_conn_id: str = AzureResourceManagerHook.default_conn_name) -> None:
        super().__init__(azure_conn_id)
        self._accounts: dict[tuple[str, str], tuple[str, str]] = {}  # (group, account) -> (blob endpoint, key)

    @cached_property
    def storage(self) -> StorageManagementClient:
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(self.credential, self.subscription_id, **self._client_kwargs())

    # ARM ------------------------------------------------------------------------------------------
    def ensure_account(self, resource_group: str, name: str, *, location: str, tags: dict[str, str]) -> str:
        """The account's id; made (StorageV2, Standard_LRS, tagged) when missing, left as it is when there.

        On Azure it takes HTTPS only, TLS 1.2 and no anonymous access; the local Azure's Azurite
        speaks plain HTTP on the loopback, so there it may not require HTTPS.
        """
        check_names(name)
        accounts = self.storage.storage_accounts
        found = get_or_none(accounts.get_properties, resource_group, name)
        if found is not None:
            return str(found.id)
        from azure.mgmt.storage.models import (
            Sku,
            StorageAccountCreateParameters,
            StorageAccountPropertiesCreateParameters,
        )

        body = StorageAccountCreateParameters(
            sku=Sku(name=ACCOUNT_SKU), kind=ACCOUNT_KIND, location=location, tags=tags,
            properties=StorageAccountPropertiesCreateParameters(
                enable_https_traffic_only=not self.is_local, minimum_tls_version="TLS1_2",
                allow_blob_public_access=False,
            ),
        )
        made = accounts.begin_create(resource_group, name, body, polling=self.lro()).result()
        return str(made.id)

    def ensure_container(self, resource_group: str, account: str, container: str) -> None:
        """The private container, made once."""
        check_names(account, container)
        containers = self.storage.blob_containers
        if get_or_none(containers.get, resource_group, account, container) is not None:
            return
        from azure.core.exceptions import ResourceExistsError
        from azure.mgmt.storage.models import BlobContainer, ContainerProperties

        body = BlobContainer(container_properties=ContainerProperties(public_access="None"))
        try:
            containers.create(resource_group, account, container, body)
        except ResourceExistsError:  # made meanwhile by a parallel task: the same container
            pass

    def _account(self, resource_group: str, account: str) -> tuple[str, str]:
        """(blob endpoint, account key), read once per hook."""
        key = (resource_group.lower(), account)
        if key not in self._accounts:
            check_names(account)
            props = self.storage.storage_accounts.get_properties(resource_group, account)
            endpoint = str(props.primary_endpoints.blob or "")
            if not endpoint:
                raise ValueError(f"storage_account: {account!r} in {resource_group!r} has no blob endpoint "
                                 f"(kind {props.kind}); it must be a {ACCOUNT_KIND} account")
            # the SDK's models are mappings: ``.keys`` is the mapping's method, the list is ``keys_property``
            keys = self.storage.storage_accounts.list_keys(resource_group, account).keys_property or []
            if not keys or not keys[0].value:
                raise PermissionError(f"storage_account: no key of {account!r} may be listed "
                                      "(the connection needs Microsoft.Storage/storageAccounts/listKeys/action)")
            secret = str(keys[0].value)
            _mask(secret)
            self._accounts[key] = (endpoint.rstrip("/") + "/", secret)
        return self._accounts[key]

    # blobs ------------------------------------------------------------------------------------------
    def blob_url(self, resource_group: str, account: str, container: str, blob: str) -> str:
        """The blob's URL, without any credential (what an image's source names)."""
        check_names(account, container, blob)
        endpoint, _ = self._account(resource_group, account)
        return f"{endpoint}{container}/{quote(blob)}"

    def blob_client(self, resource_group: str, account: str, container: str, blob: str) -> BlobClient:
        """A client for one blob, signed with the account key, safe to share between threads."""
        check_names(account, container, blob)
        from azure.core.credentials import AzureNamedKeyCredential
        from azure.storage.blob import BlobClient

        endpoint, secret = self._account(resource_group, account)
        return BlobClient(endpoint, container, blob, credential=AzureNamedKeyCredential(account, secret),
                          **self._blob_kwargs(endpoint))

    def delete_blob(self, resource_group: str, account: str, container: str, blob: str, *,
                    etag: str | None = None) -> bool:
        """Delete the blob and its snapshots; False when it (or its account or container) is already gone.

        ``etag``: delete only the blob as it was when that was read; one changed since (its metadata or
        pages written) raises ``azure.core.exceptions.ResourceModifiedError`` and stays.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        condition: dict[str, Any] = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        try:
            with self.blob_client(resource_group, account, container, blob) as client:
                client.delete_blob(delete_snapshots="include", **condition)
        except ResourceNotFoundError:
            return False
        except ResourceModifiedError:  # a condition on a missing blob fails too (Azurite): gone is gone
            if self.blob_etag(resource_group, account, container, blob) is None:
                return False
            raise
        return True

    def blob_etag(self, resource_group: str, account: str, container: str, blob: str) -> str | None:
        """The blob's ETag (it changes with every write to it), or None when it is gone."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with self.blob_client(resource_group, account, container, blob) as client:
                return _quoted(str(client.get_blob_properties().etag))
        except ResourceNotFoundError:
            return None

    def list_blobs(self, resource_group: str, account: str, container: str, prefix: str) -> list[dict[str, Any]]:
        """The blobs under ``prefix`` (``name``, ``metadata``, ``etag``); none when the account or container is missing."""
        check_names(account, container)
        from azure.core.credentials import AzureNamedKeyCredential
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContainerClient

        try:
            endpoint, secret = self._account(resource_group, account)
        except ResourceNotFoundError:  # no such account (or group)
            return []
        client = ContainerClient(endpoint, container, credential=AzureNamedKeyCredential(account, secret),
                                 **self._blob_kwargs(endpoint))
        try:
            with client:
                return [{"name": b.name, "metadata": dict(b.metadata or {}), "etag": _quoted(str(b.etag))}
                        for b in client.list_blobs(name_starts_with=prefix, include=["metadata"])]
        except ResourceNotFoundError:  # no such container
            return []

    def _blob_kwargs(self, endpoint: str) -> dict[str, Any]:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=BLOB_CONNECTIONS)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        kwargs: dict[str, Any] = {
            # downloads are read in pieces of READ_BLOCK: azure-core's 4 KiB cost more CPU than the transfer
            "transport": RequestsTransport(session=session, session_owner=True, connection_data_block_size=READ_BLOCK),
            # a Put Page per 4 MiB would bury a task log's own lines at INFO
            "http_logging_level": logging.DEBUG,
        }
        if self.is_local and endpoint.startswith("https:"):
            kwargs["connection_verify"] = self.connection_verify
        return kwargs


def _quoted(etag: str) -> str:
    """An ETag in its HTTP header form: a listing's XML gives it bare, a blob's properties in quotes."""
    return etag if etag.startswith('"') else f'"{etag}"'


def _mask(secret: str) -> None:
    """Hide the key in every log line written while this process runs under Airflow."""
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
