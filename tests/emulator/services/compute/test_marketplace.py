"""The Marketplace catalogue through virtual_machine_images, and its loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

from emulator.services.compute import marketplace


def test_publishers_offers_and_skus(arm, location):
    images = arm.compute.virtual_machine_images
    publishers = {p.name for p in images.list_publishers(location)}
    assert {"Debian", "MicrosoftWindowsServer"} <= publishers
    assert "debian-12" in {o.name for o in images.list_offers(location, "Debian")}
    skus = {s.name for s in images.list_skus(location, "Debian", "debian-12")}
    assert {"12", "12-gen2"} <= skus
    win = {s.name for s in images.list_skus(location, "MicrosoftWindowsServer", "WindowsServer")}
    assert "2022-datacenter-azure-edition" in win


def test_versions_sort_numerically_and_latest_is_first_descending(arm, location):
    images = arm.compute.virtual_machine_images
    versions = [v.name for v in images.list(location, "Debian", "debian-12", "12")]
    assert len(versions) >= 3
    assert versions == sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    newest = images.list(location, "Debian", "debian-12", "12", orderby="name desc", top=1)
    assert [v.name for v in newest] == [versions[-1]]
    # names are case-insensitive, as in Azure
    assert [v.name for v in images.list(location, "debian", "DEBIAN-12", "12")] == versions


def test_version_details(arm, location):
    images = arm.compute.virtual_machine_images
    version = images.list(location, "Debian", "debian-12", "12-gen2")[0].name
    image = images.get(location, "Debian", "debian-12", "12-gen2", version)
    assert image.name == version
    assert image.properties.hyper_v_generation == "V2"
    assert image.properties.os_disk_image.operating_system == "Linux"
    assert image.id.endswith(f"/Publishers/Debian/ArtifactTypes/VMImage/Offers/debian-12/Skus/12-gen2/Versions/{version}")
    v1 = images.get(location, "Debian", "debian-12", "12", version)
    assert v1.properties.hyper_v_generation == "V1"
    win_version = images.list(location, "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition")[0]
    assert win_version.name.startswith("20348.")
    win = images.get(location, "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition",
                     win_version.name)
    assert win.properties.os_disk_image.operating_system == "Windows"


def test_unknown_artifacts_are_404(arm, location):
    images = arm.compute.virtual_machine_images
    with pytest.raises(ResourceNotFoundError) as err:
        images.get(location, "Debian", "debian-12", "12", "9.9.9")
    assert err.value.error.code == "NotFound"
    assert err.value.error.message == "Artifact: VMImage was not found."
    with pytest.raises(ResourceNotFoundError):
        images.list(location, "Debian", "debian-12", "no-such-sku")
    with pytest.raises(ResourceNotFoundError):
        images.list_offers(location, "NoSuchPublisher")


def test_catalogue_loader_merges_files_and_providers(tmp_path: Path, monkeypatch):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"entries": [
        {"publisher": "Debian", "offer": "debian-12", "sku": "12", "osType": "Linux",
         "versions": [{"version": "0.20991231.9999", "disk": {"kind": "file", "path": "/images/debian.vhd"}}]},
        {"publisher": "Local", "offer": "qemu-debian", "sku": "12", "osType": "Linux", "hyperVGeneration": "V2",
         "versions": ["1.0.0", "1.0.10", "1.0.9"], "disk": {"kind": "file", "path": "/images/q.qcow2"}},
    ]}))
    monkeypatch.setenv(marketplace.ENV_FILES, str(extra))
    entries = marketplace.load_catalogue()
    debian = next(e for e in entries if e.matches("Debian", "debian-12", "12"))
    assert debian.latest().name == "0.20991231.9999"  # added versions join the built-in entry
    local = next(e for e in entries if e.matches("local", "QEMU-DEBIAN", "12"))
    assert local.latest().name == "1.0.10"  # numeric, not lexical, order
    assert marketplace.base_disk(local, local.latest()) == {"kind": "file", "path": "/images/q.qcow2"}
    assert marketplace.base_disk(debian, debian.latest()) == {"kind": "file", "path": "/images/debian.vhd"}

    marketplace.register_provider(lambda: [{"publisher": "Prov", "offer": "o", "sku": "s", "osType": "Linux",
                                            "versions": ["2.0.0"]}])
    try:
        assert marketplace.find("prov", "o", "s") is not None
    finally:
        marketplace._PROVIDERS.clear()
        marketplace.reset_cache()


def test_resolve_latest_and_unknown():
    entry, version = marketplace.resolve("Debian", "debian-12", "12", "latest")
    assert version.name == max((v.name for v in entry.versions), key=marketplace.version_key)
    with pytest.raises(Exception) as err:
        marketplace.resolve("Debian", "debian-12", "12", "1.2.3")
    assert getattr(err.value, "code", None) == "PlatformImageNotFound"
    assert getattr(err.value, "status", None) == 404
