"""The NoCloud seed: osProfile as cloud-init sees it, customData merged as Azure would, a real ISO."""

from __future__ import annotations

import base64
import email
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from emulator.guests.base import GuestSpec
from emulator.guests.qemu import seed

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/build-vm"


def spec(**kw: object) -> GuestSpec:
    base: dict[str, object] = dict(vm_id=VM, os_type="Linux", address="127.99.0.5", disk={"kind": "file"},
                                   computer_name="build01", admin_username="azureuser",
                                   ssh_public_keys=["ssh-ed25519 AAAAC3Nza azureuser@host"])
    base.update(kw)
    return GuestSpec(**base)  # type: ignore[arg-type]


def test_meta_data_names_the_instance_and_host() -> None:
    meta = yaml.safe_load(seed.meta_data(spec()))
    assert meta["local-hostname"] == "build01"
    assert meta["instance-id"].startswith("iid-build-vm-")
    other = spec(vm_id=VM.replace("build-vm", "smoke-vm"))
    assert seed.instance_id(other) != seed.instance_id(spec())


def test_user_data_has_the_admin_user_with_keys_and_passwordless_sudo() -> None:
    text = seed.user_data(spec())
    assert text.startswith("#cloud-config\n")
    cfg = yaml.safe_load(text)
    (user,) = cfg["users"]
    assert user["name"] == "azureuser"
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3Nza azureuser@host"]
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert user["lock_passwd"] is True
    assert cfg["hostname"] == "build01"
    assert cfg["ssh_genkeytypes"] == ["ed25519", "ecdsa"]
    assert "chpasswd" not in cfg


def test_ovf_env_names_the_user_for_waagent_deprovision() -> None:
    cfg = yaml.safe_load(seed.user_data(spec()))
    (ovf,) = [f for f in cfg["write_files"] if f["path"] == "/var/lib/waagent/ovf-env.xml"]
    root = ET.fromstring(ovf["content"])
    ns = {"wa": "http://schemas.microsoft.com/windowsazure"}
    assert root.find(".//wa:ProvisioningSection/wa:Version", ns).text == "1.0"  # type: ignore[union-attr]
    assert root.find(".//wa:LinuxProvisioningConfigurationSet/wa:UserName", ns).text == "azureuser"  # type: ignore[union-attr]
    assert root.find(".//wa:LinuxProvisioningConfigurationSet/wa:HostName", ns).text == "build01"  # type: ignore[union-attr]
    # waagent 2.9 (Debian 12) also requires PlatformSettings/ProvisionGuestAgent, else "ovf-env.xml is not found"
    assert root.find(".//wa:PlatformSettingsSection/wa:PlatformSettings/wa:ProvisionGuestAgent", ns) is not None
    assert ovf["permissions"] == "0600"


def test_a_password_is_set_and_allows_password_ssh() -> None:
    cfg = yaml.safe_load(seed.user_data(spec(admin_password="S3cret<&>!")))
    assert cfg["ssh_pwauth"] is True
    assert cfg["users"][0]["lock_passwd"] is False
    assert cfg["chpasswd"]["users"] == [{"name": "azureuser", "password": "S3cret<&>!", "type": "text"}]
    ovf = next(f["content"] for f in cfg["write_files"] if f["path"].endswith("ovf-env.xml"))
    assert "S3cret" not in ovf  # the copy left on disk never holds the password
    assert "<DisableSshPasswordAuthentication>false<" in ovf
    ET.fromstring(ovf)


def _parts(text: str) -> list[email.message.Message]:
    msg = email.message_from_string(text)
    assert msg.is_multipart()
    return [p for p in msg.walk() if not p.is_multipart()]


def test_cloud_config_custom_data_is_merged_after_ours() -> None:
    custom = "#cloud-config\nruncmd:\n  - touch /custom\nhostname: evil\n"
    text = seed.user_data(spec(custom_data=base64.b64encode(custom.encode()).decode()))
    ours, theirs = _parts(text)
    assert ours.get_content_type() == "text/cloud-config"
    assert yaml.safe_load(ours.get_payload(decode=True))["hostname"] == "build01"
    assert theirs.get_content_type() == "text/cloud-config"
    assert theirs["Merge-Type"] == seed.CUSTOM_DATA_MERGE  # our keys win, lists append
    assert b"touch /custom" in theirs.get_payload(decode=True)
    cfg = yaml.safe_load(ours.get_payload(decode=True))
    (cd,) = [f for f in cfg["write_files"] if f["path"] == "/var/lib/waagent/CustomData"]
    assert base64.b64decode(cd["content"]).decode() == custom


def test_script_custom_data_becomes_a_shell_script_part() -> None:
    text = seed.user_data(spec(custom_data=base64.b64encode(b"#!/bin/sh\necho hi > /x\n").decode()))
    _, script = _parts(text)
    assert script.get_content_type() == "text/x-shellscript"


def test_plain_custom_data_is_only_a_file() -> None:
    text = seed.user_data(spec(custom_data=base64.b64encode(b"just some data").decode()))
    assert text.startswith("#cloud-config\n")
    cfg = yaml.safe_load(text)
    assert any(f["path"] == "/var/lib/waagent/CustomData" for f in cfg["write_files"])


def test_custom_data_must_be_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        seed.user_data(spec(custom_data="not base64!!"))


def test_no_seed_for_a_specialized_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        seed.build_seed(spec(computer_name=None), tmp_path / "seed.iso")


@pytest.mark.skipif(not (shutil.which("genisoimage") or shutil.which("xorriso")), reason="no ISO tool")
def test_seed_iso_is_labelled_cidata_and_holds_both_files(tmp_path: Path) -> None:
    iso = seed.build_seed(spec(admin_password="pw"), tmp_path / "vm" / "seed.iso")
    assert iso.stat().st_mode & 0o777 == 0o600
    data = iso.read_bytes()
    assert data[0x8000 + 40:0x8000 + 72].decode().strip().lower() == "cidata"  # ISO9660 volume id
    if shutil.which("isoinfo"):
        listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True, text=True).stdout
        assert "/user-data" in listing and "/meta-data" in listing
    assert b"local-hostname: build01" in data
    assert not list(iso.parent.glob("*.part"))
