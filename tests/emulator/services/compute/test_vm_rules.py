"""The rules a VM PUT must pass, with Azure's status, code, target and wording."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.emulator.services.compute.conftest import DEBIAN, Kit, error_of

pytestmark = pytest.mark.guests("simulated")

azure = pytest.mark.azure  # wording confirmed from Azure; the others are the emulator's best knowledge


def _put_error(kit: Kit, name: str, body: dict) -> tuple[int, str, str, str | None]:
    with pytest.raises(HttpResponseError) as err:
        kit.compute.virtual_machines.begin_create_or_update(kit.group, name, body).result()
    return error_of(err.value)


@azure
def test_generalized_image_needs_os_profile(kit: Kit):
    body = kit.linux_body(kit.nic(), os_profile=None)
    assert _put_error(kit, "noprofile", body) == (
        400, "InvalidParameter", "Required parameter 'osProfile' is missing (null).", "osProfile")


@azure
def test_unknown_marketplace_image(kit: Kit):
    nic = kit.nic()
    for image, urn in (
        ({**DEBIAN, "sku": "11"}, "Debian:debian-12:11:latest"),
        ({**DEBIAN, "version": "0.1.2"}, "Debian:debian-12:12:0.1.2"),
    ):
        status, code, message, target = _put_error(kit, "badimage", kit.linux_body(nic, image=image))
        assert (status, code, target) == (404, "PlatformImageNotFound", "imageReference")
        assert message == (
            f"The platform image '{urn}' is not available. Verify that all fields in the storage profile are correct. "
            "For more details about storage profile information, please refer to https://aka.ms/storageprofile")


@pytest.mark.parametrize("name", ["_leading", "trailing-", "trailing.", "has space", "x" * 65, "dollar$"])
def test_vm_name_rules(kit: Kit, name: str):
    status, code, message, target = _put_error(kit, name, kit.linux_body(kit.nic()))
    assert (status, code, target) == (400, "InvalidParameter", "vmName")
    assert message.startswith("The entity name 'vmName' is invalid according to its validation rule:")


@azure
def test_computer_name_rules(kit: Kit):
    nic = kit.nic()
    windows = ("Windows computer name cannot be more than 15 characters long, be entirely numeric, or contain the "
               "following characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : . ' \" , < > / ?.")
    for computer_name in ("sixteen-chars-xx", "123456", "win_build"):
        assert _put_error(kit, "win", kit.windows_body(nic, computer_name=computer_name)) == (
            400, "InvalidParameter", windows, "computerName")
    linux = ("Linux host name cannot exceed 64 characters in length or contain the following characters: "
             "` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?.")
    for computer_name in ("x" * 65, "under_score"):
        assert _put_error(kit, "lin", kit.linux_body(nic, computer_name=computer_name)) == (
            400, "InvalidParameter", linux, "computerName")


@azure
@pytest.mark.parametrize("username", ["admin", "root", "Administrator", "guest", "test1"])
def test_reserved_admin_usernames(kit: Kit, username: str):
    body = kit.windows_body(kit.nic(), username=username)
    assert _put_error(kit, "reserved", body) == (
        400, "InvalidParameter", "The Admin Username specified is not allowed.", "adminUsername")


@azure
def test_linux_needs_a_key_or_password(kit: Kit):
    body = kit.linux_body(kit.nic(), os_profile={
        "computerName": "nokey", "adminUsername": "azureuser",
        "linuxConfiguration": {"disablePasswordAuthentication": True}})
    assert _put_error(kit, "nokey", body) == (
        400, "InvalidParameter",
        "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
        "linuxConfiguration")


@azure
def test_windows_password_complexity(kit: Kit):
    nic = kit.nic()
    for password in ("short1A", "alllowercaseletters", "Password1"):
        status, code, message, target = _put_error(kit, "weak", kit.windows_body(nic, password=password))
        assert (status, code, target) == (400, "InvalidParameter", "adminPassword")
        assert message.startswith("The supplied password must be between 8-123 characters long and must satisfy at "
                                  "least 3 of password complexity requirements from the following:")


def test_ssh_key_path_and_custom_data(kit: Kit, ssh_public_key: str):
    nic = kit.nic()
    body = kit.linux_body(nic, os_profile={
        "computerName": "keys", "adminUsername": "azureuser",
        "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
            {"path": "/root/.ssh/authorized_keys", "keyData": ssh_public_key}]}}})
    status, code, message, target = _put_error(kit, "keys", body)
    assert (status, code, target) == (400, "InvalidParameter", "linuxConfiguration.ssh.publicKeys.path")
    assert message.startswith("Destination path for SSH public keys is currently limited to its default value "
                              "/home/azureuser/.ssh/authorized_keys")
    body = kit.linux_body(nic)
    body["properties"]["osProfile"]["customData"] = "not base64!"
    status, code, message, target = _put_error(kit, "custom", body)
    assert (status, code, target) == (400, "InvalidParameter", "customData")


def test_os_disk_smaller_than_the_image(kit: Kit):
    body = kit.linux_body(kit.nic(), os_disk={"diskSizeGB": 10})
    status, code, message, target = _put_error(kit, "tiny", body)
    assert (status, code, target) == (400, "InvalidParameter", "osDisk.diskSizeGB")
    assert message.startswith("The specified disk size 10 GB is smaller than the size of the corresponding disk in "
                              "the VM image: 30 GB.")


@azure
def test_missing_group(kit: Kit):
    body = kit.linux_body(kit.nic())
    with pytest.raises(ResourceNotFoundError) as err:
        kit.compute.virtual_machines.begin_create_or_update("no-such-group-xyz", "vm", body).result()
    assert error_of(err.value)[:3] == (404, "ResourceGroupNotFound", "Resource group 'no-such-group-xyz' could not be found.")


@azure
def test_nic_must_exist_in_the_vm_region(kit: Kit):
    far = kit.nic("far-nic", location="eastus")
    status, code, message, _ = _put_error(kit, "farvm", kit.linux_body(far))
    assert (status, code) == (400, "InvalidResourceReference")
    assert message.startswith(f"Resource {far} referenced by resource ")
    assert message.endswith("was not found. Please make sure that the referenced resource exists, and that both "
                            "resources are in the same region.")
    missing = far.replace("far-nic", "missing-nic")
    status, code, _, _ = _put_error(kit, "farvm", kit.linux_body(missing))
    assert (status, code) == (400, "InvalidResourceReference")


def test_no_network_interface(kit: Kit):
    body = kit.linux_body(kit.nic())
    del body["properties"]["networkProfile"]
    assert _put_error(kit, "nonet", body) == (
        400, "InvalidParameter", "Required parameter 'networkProfile' is missing (null).", "networkProfile")
