"""Images from VHDs uploaded as page blobs to a storage account (Azurite): only valid pages are fetched, into a
sparse file, once per blob version; both URL forms of an account here are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.storage import vhd
from tests.emulator.services.gallery.conftest import vhd_version_body
from tests.emulator.services.storage.conftest import azurite, blob_service, first_key

MIB = 1024 * 1024
SIZE = 16 * MIB
PAGES = {0: b"\xeb\x63\x90" + b"\x11" * 509, 8 * MIB: b"\x22" * 4096}  # a boot sector and one block of data


@pytest.fixture
def uploaded(storage, new_account, group):  # type: ignore[no-untyped-def]
    """(account, https URL, Azurite URL) of a sparse 16 MiB fixed VHD uploaded page by page with the SDK."""
    account = new_account()
    container = blob_service(account, first_key(storage, group, account.name)).create_container("vhds")
    blob = container.get_blob_client("golden/disk.vhd")
    blob.create_page_blob(SIZE + vhd.FOOTER_SIZE)
    for offset, data in {**PAGES, SIZE: vhd.make_footer(SIZE)}.items():
        blob.upload_page(data, offset=offset, length=len(data))
    return (account, f"https://{account.name}.blob.core.windows.net/vhds/golden/disk.vhd",
            f"{account.primary_endpoints.blob}vhds/golden/disk.vhd")


def _image_body(location: str, uri: str, **os_disk: str) -> dict:  # type: ignore[type-arg]
    disk = {"osType": "Linux", "osState": "Generalized", "blobUri": uri, **os_disk}
    return {"location": location, "properties": {"hyperVGeneration": "V2",
                                                  "storageProfile": {"osDisk": {k: v for k, v in disk.items() if v}}}}


def _downloads(local_azure, account: str) -> int:  # type: ignore[no-untyped-def]
    """Range reads of the blob's bytes Azurite has served (its access log)."""
    text = Path(azurite(local_azure)["log"]).read_text()
    return text.count(f'"GET /{account}/vhds/golden/disk.vhd HTTP')


def test_a_sparse_page_blob_becomes_a_gallery_version_and_a_managed_image(
        arm, local_azure, group, gallery, definition, location, uploaded):
    account, https_url, azurite_url = uploaded
    version = arm.compute.gallery_image_versions.begin_create_or_update(
        group, gallery, definition, "1.0.0", vhd_version_body(location, azurite_url)).result()
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.os_disk_image.size_in_gb == 1

    cached = list((local_azure.state_dir / "imported" / account.name).rglob("*.vhd"))
    assert len(cached) == 1
    path = cached[0]
    assert path.stat().st_size == SIZE + vhd.FOOTER_SIZE
    assert path.stat().st_blocks * 512 <= 256 * 1024  # only the valid pages were written: the rest are holes
    with open(path, "rb") as fh:
        for offset, data in PAGES.items():
            fh.seek(offset)
            assert fh.read(len(data)) == data
    assert vhd.check_fixed(path).current_size == SIZE
    downloads = _downloads(local_azure, account.name)
    assert downloads >= 2

    image = arm.compute.images.begin_create_or_update(group, "imported", _image_body(location, https_url)).result()
    assert image.provisioning_state == "Succeeded" and image.source_virtual_machine is None
    os_disk = image.storage_profile.os_disk
    assert (os_disk.os_type, os_disk.os_state, os_disk.blob_uri, os_disk.disk_size_gb) == (
        "Linux", "Generalized", https_url, 1)
    assert image.hyper_v_generation == "V2"
    assert _downloads(local_azure, account.name) == downloads  # same blob, same ETag: no second download
    assert list((local_azure.state_dir / "imported" / account.name).rglob("*.vhd")) == [path]


def test_a_missing_blob_is_source_not_found(arm, group, gallery, definition, location, uploaded):
    _, https_url, _ = uploaded
    missing = https_url.replace("disk.vhd", "nothere.vhd")
    with pytest.raises(HttpResponseError) as err:
        arm.compute.images.begin_create_or_update(group, "ghost", _image_body(location, missing)).result()
    assert (err.value.status_code, err.value.error.code, err.value.error.message) == (
        400, "InvalidParameter", f"Source was not found: {missing}. Please make sure the source exists.")
    with pytest.raises(HttpResponseError) as err:
        arm.compute.gallery_image_versions.begin_create_or_update(
            group, gallery, definition, "1.0.1", vhd_version_body(location, missing)).result()
    assert err.value.status_code == 400 and err.value.error.message.startswith("Source was not found")


def test_image_from_a_blob_needs_os_type_a_generalized_state_and_a_fixed_vhd(
        storage, arm, group, location, uploaded):
    account, https_url, _ = uploaded
    images = arm.compute.images
    with pytest.raises(HttpResponseError) as err:
        images.begin_create_or_update(group, "notype", _image_body(location, https_url, osType="")).result()
    assert (err.value.error.code, err.value.error.message) == (
        "InvalidParameter", "Required parameter 'osDisk.osType' is missing (null).")
    with pytest.raises(HttpResponseError) as err:
        images.begin_create_or_update(group, "special", _image_body(location, https_url, osState="Specialized")).result()
    assert err.value.error.target == "osDisk.osState"

    blob = blob_service(account, first_key(storage, group, account.name)).get_blob_client("vhds", "raw.img")
    blob.create_page_blob(2 * MIB)
    blob.upload_page(b"\x01" * 512, offset=0, length=512)
    raw = https_url.replace("golden/disk.vhd", "raw.img")
    with pytest.raises(HttpResponseError) as err:
        images.begin_create_or_update(group, "raw", _image_body(location, raw)).result()
    assert err.value.error.message == (
        f"The specified cookie value in VHD footer indicates that disk 'raw.img' with blob {raw} is not a supported "
        "VHD. Disk is expected to have cookie value 'conectix'.")
    assert [i.name for i in images.list_by_resource_group(group)] == []
