"""The blob endpoint of an account in Azurite, and azure-storage-blob clients that sign with its key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.core.context import Context
from emulator.storage.azurite import process

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient


def endpoint(ctx: Context, account: str) -> str:
    """``http://127.0.0.1:<port>/<account>/``: Azurite's path-style URL (the port is the running Azurite's)."""
    return f"{process.ensure(ctx).url}/{account}/"


def blob_service(ctx: Context, account: str, key: str) -> BlobServiceClient:
    """A client for ``account``'s blobs, authenticated with Shared Key (the account must be registered)."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient(endpoint(ctx, account), credential={"account_name": account, "account_key": key},
                             retry_total=2)
