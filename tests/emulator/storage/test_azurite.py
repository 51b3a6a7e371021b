"""Azurite behind the storage accounts: SAS and keys it accepts, accounts it learns at once, data that goes
with its account, and a process that lives and dies with the emulator."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, BlobServiceClient

from tests.emulator.services.storage.conftest import (
    account_body,
    azurite,
    blob_service,
    first_key,
    storage_client,
    unique_account,
)
from tests.localazure import LocalAzure

EXPIRY = (datetime.now(UTC) + timedelta(hours=2)).isoformat()


def _upload_pages(blob: BlobClient) -> None:
    """A small page blob with one written page: what a VHD upload does, 512-byte aligned."""
    blob.create_page_blob(64 * 1024)
    blob.upload_page(b"\x42" * 512, offset=4096, length=512)


def test_account_sas_from_list_account_sas_uploads_a_page_blob(storage, new_account, group):
    account = new_account()
    blob_service(account, first_key(storage, group, account.name)).create_container("vhds")
    token = storage.storage_accounts.list_account_sas(group, account.name, {
        "signedServices": "b", "signedResourceTypes": "sco", "signedPermission": "rwlc",
        "signedProtocol": "https,http", "signedExpiry": EXPIRY,
    }).account_sas_token
    assert "sig=" in token and "ss=b" in token
    url = f"{account.primary_endpoints.blob}vhds/disk.vhd"
    blob = BlobClient.from_blob_url(f"{url}?{token}")
    _upload_pages(blob)
    assert [(r["start"], r["end"]) for r in blob.get_page_ranges()[0]] == [(4096, 4607)]

    tampered = token.replace("sp=rwlc", "sp=rwdlc")  # more rights than were signed
    with pytest.raises(HttpResponseError) as err:
        BlobClient.from_blob_url(f"{url}?{tampered}").delete_blob()
    assert err.value.status_code == 403
    assert BlobClient.from_blob_url(f"{url}?{token}").exists()


def test_service_sas_from_list_service_sas_is_for_its_blob_only(storage, new_account, group):
    account = new_account()
    blob_service(account, first_key(storage, group, account.name)).create_container("vhds")
    token = storage.storage_accounts.list_service_sas(group, account.name, {
        "canonicalizedResource": f"/blob/{account.name}/vhds/disk.vhd", "signedResource": "b",
        "signedPermission": "rcw", "signedExpiry": EXPIRY, "keyToSign": "key2",
    }).service_sas_token
    base = account.primary_endpoints.blob
    blob = BlobClient.from_blob_url(f"{base}vhds/disk.vhd?{token}")
    _upload_pages(blob)
    assert blob.get_blob_properties().size == 64 * 1024
    with pytest.raises(HttpResponseError) as err:  # signed for disk.vhd, not for another blob
        BlobClient.from_blob_url(f"{base}vhds/other.vhd?{token}").create_page_blob(512)
    assert err.value.status_code == 403

    with pytest.raises(HttpResponseError) as err:
        storage.storage_accounts.list_service_sas(group, account.name, {
            "canonicalizedResource": "/blob/someoneelse/vhds/disk.vhd", "signedResource": "b",
            "signedPermission": "r", "signedExpiry": EXPIRY})
    assert err.value.status_code == 400 and "canonicalizedResource" in err.value.message


def test_an_account_created_after_azurite_started_works_at_once(storage, new_account, group, local_azure):
    first = new_account()
    before = azurite(local_azure)
    assert before["running"] and first.name in before["accounts"]
    second = new_account()
    container = blob_service(second, first_key(storage, group, second.name)).create_container("fresh")
    _upload_pages(container.get_blob_client("disk.vhd"))
    after = azurite(local_azure)
    assert after["pid"] == before["pid"] and second.name in after["accounts"]  # no restart was needed


def test_deleting_an_account_or_its_group_removes_its_data(storage, arm, local_azure, location):
    group = f"test-{os.urandom(5).hex()}"
    arm.resources.resource_groups.create_or_update(group, {"location": location})
    doomed, kept = unique_account(), unique_account()
    for name in (doomed, kept):
        account = storage.storage_accounts.begin_create(group, name, account_body(location)).result()
        _upload_pages(blob_service(account, first_key(storage, group, name)).create_container("vhds")
                      .get_blob_client("disk.vhd"))
    old_key = first_key(storage, group, doomed)
    account = storage.storage_accounts.get_properties(group, doomed)

    storage.storage_accounts.delete(group, doomed)
    with pytest.raises(HttpResponseError) as err:  # the account is gone from Azurite too: it knows no such account
        list(blob_service(account, old_key).list_containers())
    assert err.value.status_code == 404
    again = storage.storage_accounts.begin_create(group, doomed, account_body(location)).result()
    assert list(blob_service(again, first_key(storage, group, doomed)).list_containers()) == []

    arm.resources.resource_groups.begin_delete(group).result()
    assert not {doomed, kept} & set(azurite(local_azure)["accounts"])
    other = f"test-{os.urandom(5).hex()}"
    arm.resources.resource_groups.create_or_update(other, {"location": location})
    try:
        reborn = storage.storage_accounts.begin_create(other, kept, account_body(location)).result()
        assert list(blob_service(reborn, first_key(storage, other, kept)).list_containers()) == []
    finally:
        arm.resources.resource_groups.begin_delete(other).result()


def test_azurite_lives_and_dies_with_the_emulator(tmp_path, real_azure):
    """Its own local Azure: Azurite starts with the first account, stops (by PID) with the emulator, starts with
    the emulator when the state holds accounts, and the data and keys survive."""
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path / "azure").start()
    try:
        assert azurite(emu)["running"] is False  # nothing to serve yet: not started
        hook = emu.hook("azurite_lifetime")
        hook.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
        storage = storage_client(hook)
        name = unique_account()
        account = storage.storage_accounts.begin_create("rg", name, account_body("westeurope")).result()
        key = first_key(storage, "rg", name)
        _upload_pages(blob_service(account, key).create_container("vhds").get_blob_client("disk.vhd"))
        pid = azurite(emu)["pid"]
        assert os.path.exists(f"/proc/{pid}")

        emu.stop()
        assert not os.path.exists(f"/proc/{pid}")  # stopped with the emulator, not left behind

        emu.start()
        status = azurite(emu)
        assert status["running"] and status["pid"] != pid and status["accounts"] == [name]
        account = storage.storage_accounts.get_properties("rg", name)
        assert account.primary_endpoints.blob == f"http://127.0.0.1:{status['port']}/{name}/"
        blob = BlobServiceClient(account.primary_endpoints.blob, credential={"account_name": name, "account_key": key})
        assert blob.get_blob_client("vhds", "disk.vhd").download_blob(offset=4096, length=512).readall() == b"\x42" * 512
        pid = status["pid"]
    finally:
        emu.stop()
    assert not os.path.exists(f"/proc/{pid}")


def test_an_azurite_left_by_a_killed_emulator_is_stopped_by_the_next(tmp_path, real_azure):
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path / "azure").start()
    try:
        hook = emu.hook("azurite_leftover")
        hook.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
        storage_client(hook).storage_accounts.begin_create("rg", unique_account(), account_body("westeurope")).result()
        orphan = azurite(emu)["pid"]
        assert emu.proc is not None
        emu.proc.kill()  # no shutdown hook runs: Azurite outlives its emulator
        emu.proc.wait(10)
        assert os.path.exists(f"/proc/{orphan}")
        emu.start()
        status = azurite(emu)
        assert status["running"] and status["pid"] != orphan
        assert not os.path.exists(f"/proc/{orphan}")  # the new emulator stopped the one its state named
    finally:
        emu.stop()


def test_without_node_storage_calls_say_to_run_factory_install(tmp_path, real_azure):
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path / "azure", env={"PATH": str(tmp_path / "empty")}).start()  # no 'node' to be found
    try:
        hook = emu.hook("azurite_missing")
        hook.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
        storage = storage_client(hook)
        name = unique_account()
        with pytest.raises(HttpResponseError) as err:
            storage.storage_accounts.begin_create("rg", name, account_body("westeurope"), retry_total=0).result()
        error = err.value.response.json()["error"]
        assert error["code"] == "StorageEmulatorUnavailable" and "run ./factory install" in error["message"]
        assert storage.storage_accounts.check_name_availability({"name": name}).name_available  # nothing was created
        assert azurite(emu)["running"] is False
    finally:
        emu.stop()


def test_an_external_azurite_is_used_and_never_started_or_stopped(tmp_path, real_azure):
    """docker-compose.yaml's topology: Azurite is its own service (launch.js on the shared accounts file) and the
    emulator, told its URL, serves accounts from it without starting one of its own."""
    if real_azure:
        pytest.skip("emulator-only test")
    import subprocess

    from emulator.storage.azurite.process import LAUNCHER
    from tests.localazure import free_port

    state = tmp_path / "azure"
    port = free_port()
    log = open(tmp_path / "azurite.log", "wb")
    external = subprocess.Popen(
        ["node", str(LAUNCHER), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
         str(tmp_path / "azurite-data"), "--skipApiVersionCheck", "--disableTelemetry"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "LOCAL_AZURE_ACCOUNTS_FILE": str(state / "azurite" / "accounts")},
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    emu = LocalAzure(state, env={"LOCAL_AZURE_AZURITE_URL": url}).start()
    try:
        hook = emu.hook("azurite_external")
        hook.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
        storage = storage_client(hook)
        name = unique_account()
        account = storage.storage_accounts.begin_create("rg", name, account_body("westeurope")).result()
        assert account.primary_endpoints.blob == f"{url}/{name}/"
        key = first_key(storage, "rg", name)
        _upload_pages(blob_service(account, key).create_container("vhds").get_blob_client("disk.vhd"))
        status = azurite(emu)
        assert status["running"] and status["pid"] is None and status["url"] == url
        emu.stop()
        assert external.poll() is None  # not the emulator's to stop: its data is still served
        blob = BlobServiceClient(f"{url}/{name}/", credential={"account_name": name, "account_key": key})
        assert blob.get_blob_client("vhds", "disk.vhd").download_blob(offset=4096, length=512).readall() == b"\x42" * 512
    finally:
        emu.stop()
        external.terminate()
        external.wait(10)
