"""StorageHook against the local Azure: the account and container made once, blobs reached at the account's
own blob endpoint (Azurite) with its key, which stays masked and inside the hook."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError

from image_factory.hooks.storage import StorageHook

TAGS = {"factory": "tests", "purpose": "staging"}


@pytest.fixture(scope="module")
def storage(azure_conn: str) -> StorageHook:
    return StorageHook(azure_conn)


def account_name() -> str:
    return "st" + uuid.uuid4().hex[:16]


def test_account_and_container_are_made_once(storage: StorageHook, group: str, location: str) -> None:
    name = account_name()
    made = storage.ensure_account(group, name, location=location, tags=TAGS)
    again = storage.ensure_account(group, name, location=location, tags={"other": "tags"})  # found, left as it is
    assert made == again and made.endswith(f"/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}")
    props = storage.storage.storage_accounts.get_properties(group, name)
    assert props.kind == "StorageV2" and props.sku.name == "Standard_LRS" and props.tags == TAGS
    assert props.allow_blob_public_access is False and props.minimum_tls_version == "TLS1_2"
    assert props.enable_https_traffic_only is False  # Azurite speaks HTTP; on Azure the hook asks for HTTPS only
    assert props.primary_endpoints.blob.startswith("http://127.0.0.1:")  # Azurite, not the public cloud

    storage.ensure_container(group, name, "vhds")
    storage.ensure_container(group, name, "vhds")
    names = [c.name for c in storage.storage.blob_containers.list(group, name)]
    assert names == ["vhds"]


def test_blob_client_writes_at_the_accounts_endpoint_and_delete_blob_is_idempotent(
        storage: StorageHook, group: str, location: str) -> None:
    name = account_name()
    storage.ensure_account(group, name, location=location, tags=TAGS)
    storage.ensure_container(group, name, "vhds")
    url = storage.blob_url(group, name, "vhds", "disks/a b.vhd")
    endpoint = storage.storage.storage_accounts.get_properties(group, name).primary_endpoints.blob
    assert url == f"{endpoint.rstrip('/')}/vhds/disks/a%20b.vhd"

    client = storage.blob_client(group, name, "vhds", "disks/a b.vhd")
    assert client.url == url
    client.create_page_blob(4096, metadata={"k": "v"})
    client.upload_page(b"\x07" * 512, offset=1024, length=512)
    again = StorageHook(storage.azure_conn_id).blob_client(group, name, "vhds", "disks/a b.vhd")  # a new hook
    assert again.download_blob().readall() == bytes(1024) + b"\x07" * 512 + bytes(2560)
    assert again.get_blob_properties().metadata == {"k": "v"}

    assert storage.delete_blob(group, name, "vhds", "disks/a b.vhd") is True
    with pytest.raises(ResourceNotFoundError):
        client.get_blob_properties()
    assert storage.delete_blob(group, name, "vhds", "disks/a b.vhd") is False  # already gone
    assert storage.delete_blob(group, name, "absent", "x.vhd") is False  # so is the container
    assert storage.delete_blob(group, account_name(), "vhds", "x.vhd") is False  # and the account


def test_blobs_are_listed_with_metadata_and_a_delete_by_etag_spares_a_blob_written_since(
        storage: StorageHook, group: str, location: str) -> None:
    from azure.core.exceptions import ResourceModifiedError

    name = account_name()
    assert storage.list_blobs(group, name, "vhds", "img/") == []  # no account yet: nothing, not an error
    storage.ensure_account(group, name, location=location, tags=TAGS)
    assert storage.list_blobs(group, name, "vhds", "img/") == []  # no container yet
    storage.ensure_container(group, name, "vhds")
    for blob, meta in (("img/1.0.0.vhd", {"run": "a"}), ("img/1.1.0.vhd", {}), ("other/1.0.0.vhd", {"run": "b"})):
        storage.blob_client(group, name, "vhds", blob).upload_blob(b"x", metadata=meta)
    listed = storage.list_blobs(group, name, "vhds", "img/")
    assert [(b["name"], b["metadata"]) for b in listed] == [("img/1.0.0.vhd", {"run": "a"}), ("img/1.1.0.vhd", {})]
    judged = listed[0]["etag"]
    assert storage.blob_etag(group, name, "vhds", "img/1.0.0.vhd") == judged

    storage.blob_client(group, name, "vhds", "img/1.0.0.vhd").set_blob_metadata({"run": "c"})  # taken up since
    with pytest.raises(ResourceModifiedError):
        storage.delete_blob(group, name, "vhds", "img/1.0.0.vhd", etag=judged)
    now = storage.blob_etag(group, name, "vhds", "img/1.0.0.vhd")
    assert now not in (None, judged)
    assert storage.delete_blob(group, name, "vhds", "img/1.0.0.vhd", etag=now) is True
    assert storage.blob_etag(group, name, "vhds", "img/1.0.0.vhd") is None
    assert storage.delete_blob(group, name, "vhds", "img/1.0.0.vhd", etag=now) is False  # gone: done


def test_the_account_key_is_masked_and_never_handed_out(storage: StorageHook, group: str, location: str) -> None:
    from airflow.sdk.log import _secrets_masker

    name = account_name()
    storage.ensure_account(group, name, location=location, tags=TAGS)
    storage.ensure_container(group, name, "vhds")
    key = str(storage.storage.storage_accounts.list_keys(group, name).keys_property[0].value)
    assert _secrets_masker().redact(f"key={key}") == f"key={key}"  # not known before the hook read it

    client = storage.blob_client(group, name, "vhds", "x.vhd")
    client.upload_blob(b"signed with the key", overwrite=True)  # the key really signs requests
    assert key not in _secrets_masker().redact(f"key={key}")
    assert key not in client.url and key not in storage.blob_url(group, name, "vhds", "x.vhd")


@pytest.mark.parametrize(("account", "container", "blob", "field"), [
    ("Has-Upper", "vhds", "x", "storage_account"),
    ("ab", "vhds", "x", "storage_account"),
    ("okname", "Bad_Container", "x", "container"),
    ("okname", "a--b", "x", "container"),
    ("okname", "vhds", "", "blob"),
])
def test_bad_names_are_refused_before_any_request(storage: StorageHook, account: str, container: str, blob: str,
                                                  field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        storage.blob_url("any-group", account, container, blob)
