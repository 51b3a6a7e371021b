"""Blob containers through ARM (``.../blobServices/default/containers/{name}``), kept in Azurite only.

Azure's control plane shows the containers of the data plane, whoever created them (an ARM PUT or a
data-plane client with a key or SAS), so Azurite is the only record: nothing is stored here.
"""

from __future__ import annotations

from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError, NotFound
from emulator.core.store import Resource
from emulator.services.storage import models
from emulator.storage.azurite import client

CONTAINER = f"{models.ACCOUNT}/blobServices/containers"
PUBLIC_ACCESS = {"None": None, "Container": "container", "Blob": "blob"}


def _error(exc: Exception) -> ArmError:
    """A data-plane refusal as the storage RP relays it."""
    from azure.core.exceptions import HttpResponseError

    status = exc.status_code if isinstance(exc, HttpResponseError) and exc.status_code else 500
    message = getattr(exc, "message", None) or str(exc)
    return ArmError(message.split("\n", 1)[0], code="ContainerOperationFailure", status=status)


def _wire(account: Resource, name: str, props: Any) -> dict[str, Any]:
    rid = f"{account.id}/blobServices/default/containers/{name}"
    access = {v: k for k, v in PUBLIC_ACCESS.items()}.get(props.public_access, "None")
    lease = props.lease
    return {
        "id": rid, "name": name, "type": CONTAINER, "etag": props.etag,
        "properties": {
            "publicAccess": access,
            "leaseStatus": str(lease.status or "unlocked").capitalize(),
            "leaseState": str(lease.state or "available").capitalize(),
            "lastModifiedTime": props.last_modified.isoformat().replace("+00:00", "Z") if props.last_modified else None,
            "metadata": dict(props.metadata or {}),
            "hasImmutabilityPolicy": False, "hasLegalHold": False, "deleted": False, "remainingRetentionDays": 0,
            "defaultEncryptionScope": "$account-encryption-key", "denyEncryptionScopeOverride": False,
        },
    }


def put_container(ctx: Context, group: str, account_name: str, name: str, body: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """Create a container (or set an existing one's metadata and public access); True when created."""
    from azure.core.exceptions import AzureError, ResourceExistsError

    account = models.get_account(ctx, group, account_name)
    props = (body or {}).get("properties") or {}
    access_name = props.get("publicAccess", "None")
    if access_name not in PUBLIC_ACCESS:
        raise models.invalid("publicAccess", "Use None, Container or Blob.")
    metadata = props.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise models.invalid("metadata", "Metadata is an object of string values.")
    container = client.blob_service(ctx, account.name, models.key(account)).get_container_client(name)
    created = True
    try:
        try:
            container.create_container(metadata=metadata, public_access=PUBLIC_ACCESS[access_name])
        except ResourceExistsError:
            created = False
            container.set_container_metadata(metadata)
            container.set_container_access_policy({}, public_access=PUBLIC_ACCESS[access_name])
        return _wire(account, name, container.get_container_properties()), created
    except AzureError as exc:
        raise _error(exc) from exc


def get_container(ctx: Context, group: str, account_name: str, name: str) -> dict[str, Any]:
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    account = models.get_account(ctx, group, account_name)
    container = client.blob_service(ctx, account.name, models.key(account)).get_container_client(name)
    try:
        return _wire(account, name, container.get_container_properties())
    except ResourceNotFoundError as exc:
        raise NotFound("The specified container does not exist.", code="ContainerNotFound") from exc
    except AzureError as exc:
        raise _error(exc) from exc


def list_containers(ctx: Context, group: str, account_name: str) -> list[dict[str, Any]]:
    from azure.core.exceptions import AzureError

    account = models.get_account(ctx, group, account_name)
    service = client.blob_service(ctx, account.name, models.key(account))
    try:
        return [_wire(account, c.name, c) for c in service.list_containers(include_metadata=True)]
    except AzureError as exc:
        raise _error(exc) from exc


def delete_container(ctx: Context, group: str, account_name: str, name: str) -> bool:
    """Delete a container and its blobs; False when there was none (ARM answers 204)."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    account = models.get_account(ctx, group, account_name)
    container = client.blob_service(ctx, account.name, models.key(account)).get_container_client(name)
    try:
        container.delete_container()
    except ResourceNotFoundError:
        return False
    except AzureError as exc:
        raise _error(exc) from exc
    return True


def purge(ctx: Context, account: Resource) -> int:
    """Delete every container of an account (its blobs with them); how many there were."""
    service = client.blob_service(ctx, account.name, models.key(account))
    names = [c.name for c in service.list_containers()]
    for name in names:
        service.delete_container(name)
    return len(names)
