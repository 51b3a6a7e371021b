"""GalleryHook against the local Azure: idempotent gallery and definition, versions from create to delete."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from image_factory.credentials import ssh_key_pair
from image_factory.definitions import ImageDefinition, load_file
from image_factory.hooks.compute import ComputeHook
from image_factory.hooks.gallery import GalleryHook, ImageDefinitionConflict
from image_factory.hooks.network import NetworkHook
from image_factory.hooks.resources import ResourceGroupHook
from image_factory.naming import TAG_VERSION_RUN
from image_factory.versioning import Existing
from tests.localazure import LocalAzure
from tests.plugins.image_factory.hooks.conftest import inventory, request_seq, requests_since

HOME, SECOND = "westeurope", "eastus"
IMAGES = Path(__file__).resolve().parents[4] / "include" / "images"


@pytest.fixture(scope="module")
def hook(azure_conn: str) -> GalleryHook:
    return GalleryHook(azure_conn)


@pytest.fixture(scope="module")
def gallery_group(azure_conn: str) -> Iterator[str]:
    rg = ResourceGroupHook(azure_conn)
    name = f"test-gallery-{uuid.uuid4().hex[:8]}"
    rg.ensure_resource_group(name, HOME, {"factory": "tests"})
    yield name
    rg.resources.resource_groups.begin_delete(name).result()


@pytest.fixture(scope="module")
def source_vm(azure_conn: str, gallery_group: str) -> str:
    """A deallocated, generalized Debian 12 gen2 VM: what a gallery version is captured from."""
    run = uuid.uuid4().hex[:8]
    net = NetworkHook(azure_conn)
    nic = net.ensure_build_network(
        gallery_group,
        HOME,
        vnet=f"vnet-{run}",
        subnet="build",
        nsg=f"nsg-{run}",
        public_ip=f"pip-{run}",
        nic=f"nic-{run}",
        allow_from=net.allowed_source(),
        ports=[22],
        tags={},
    )["nic_id"]
    compute = ComputeHook(azure_conn)
    vm = compute.ensure_vm(
        gallery_group,
        f"vm-{run}",
        location=HOME,
        size="Standard_D2s_v5",
        image={"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"},
        os_type="Linux",
        computer_name=f"build-{run}",
        admin_username="builder",
        ssh_public_key=ssh_key_pair("hook-tests-secret-0123456789", run).public_openssh,
        nic_id=nic,
        tags={},
    )
    compute.deallocate(gallery_group, f"vm-{run}")
    compute.generalize(gallery_group, f"vm-{run}")
    return str(vm["id"])


@pytest.fixture(scope="module")
def gallery(hook: GalleryHook, gallery_group: str) -> str:
    name = f"gal_tests_{uuid.uuid4().hex[:8]}"
    hook.ensure_gallery(gallery_group, name, HOME, {"factory": "tests"})
    return name


@pytest.fixture
def definition(hook: GalleryHook, gallery_group: str, gallery: str) -> ImageDefinition:
    """debian12-web as the repository defines it, under a definition name of its own."""
    base = load_file(IMAGES / "debian12-web.yaml")
    unique = uuid.uuid4().hex[:8]  # a gallery holds each publisher/offer/sku once
    made = dataclasses.replace(base, definition=f"def-{unique}", sku=f"web-{unique}", gallery_location=HOME)
    hook.ensure_image_definition(gallery_group, gallery, made)
    return made


def _wait_replicated(hook: GalleryHook, group: str, gallery: str, definition: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status = hook.version_status(group, gallery, definition, version)
        assert status is not None
        if status["provisioning_state"] in ("Succeeded", "Failed") and all(
            r["state"] in ("Completed", "Failed") for r in status["regions"].values()
        ):
            return status
        assert time.monotonic() < deadline, f"replication did not finish: {status}"
        time.sleep(0.2)


def _regions() -> list[dict[str, Any]]:
    return [
        {"name": HOME, "replicas": 1, "storage_account_type": "Standard_LRS"},
        {"name": SECOND, "replicas": 2, "storage_account_type": "Standard_ZRS"},
    ]


def test_ensure_gallery_twice_creates_one(hook: GalleryHook, local_azure: LocalAzure, gallery_group: str) -> None:
    name = f"gal_twice_{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:8]
    first = hook.ensure_gallery(gallery_group, name, HOME, {"run": tag})
    assert hook.ensure_gallery(gallery_group, name, HOME, {"run": tag}) == first
    assert [g["id"] for g in inventory(local_azure, "Microsoft.Compute/galleries", run=tag)] == [first]


def test_ensure_image_definition_twice_creates_one(
    hook: GalleryHook, gallery_group: str, gallery: str, definition: ImageDefinition
) -> None:
    again = hook.ensure_image_definition(gallery_group, gallery, definition)
    found = [
        d
        for d in hook.compute.gallery_images.list_by_gallery(gallery_group, gallery)
        if d.name == definition.definition
    ]
    assert [d.id for d in found] == [again]
    made = found[0]
    assert (made.os_type, made.os_state, made.hyper_v_generation) == ("Linux", "Generalized", "V2")
    assert (made.identifier.publisher, made.identifier.offer, made.identifier.sku) == (
        definition.publisher,
        definition.offer,
        definition.sku,
    )


@pytest.mark.parametrize(
    ("field", "value"), [("os_state", "Specialized"), ("hyper_v_generation", "V1"), ("os_type", "Windows")]
)
def test_a_changed_fixed_field_is_an_error_naming_it(
    hook: GalleryHook, gallery_group: str, gallery: str, definition: ImageDefinition, field: str, value: str
) -> None:
    changes: dict[str, Any] = {field: value}
    changed = dataclasses.replace(definition, **changes)
    with pytest.raises(ImageDefinitionConflict, match=rf"with {field} .* sets {field} '{value}'"):
        hook.ensure_image_definition(gallery_group, gallery, changed)


def test_version_lifecycle(
    hook: GalleryHook,
    local_azure: LocalAzure,
    gallery_group: str,
    gallery: str,
    definition: ImageDefinition,
    source_vm: str,
) -> None:
    d = definition.definition
    run_id = f"scheduled__{uuid.uuid4().hex}"
    end_of_life = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
    args: dict[str, Any] = {
        "location": HOME,
        "source_id": source_vm,
        "regions": _regions(),
        "end_of_life": end_of_life,
        "tags": {TAG_VERSION_RUN: run_id},
    }
    assert hook.list_versions(gallery_group, gallery, d) == []
    version_id = hook.begin_create_version(gallery_group, gallery, d, "1.0.0", **args)
    assert version_id.lower().endswith(f"/galleries/{gallery}/images/{d}/versions/1.0.0".lower())

    # a retry of the same call sends no second PUT
    seq = request_seq(local_azure)
    assert hook.begin_create_version(gallery_group, gallery, d, "1.0.0", **args).lower() == version_id.lower()
    assert [e for e in requests_since(local_azure, seq) if e["method"] == "PUT"] == []

    status = _wait_replicated(hook, gallery_group, gallery, d, "1.0.0")
    assert status["provisioning_state"] == "Succeeded"
    assert {r: s["state"] for r, s in status["regions"].items()} == {HOME: "Completed", SECOND: "Completed"}
    assert all(s["progress"] == 100 for s in status["regions"].values())

    assert hook.list_versions(gallery_group, gallery, d) == [Existing("1.0.0", "Succeeded", run_id)]
    made = hook.compute.gallery_image_versions.get(gallery_group, gallery, d, "1.0.0")
    targets = {t.name.replace(" ", "").lower(): t for t in made.publishing_profile.target_regions}
    assert targets[SECOND].regional_replica_count == 2 and targets[SECOND].storage_account_type == "Standard_ZRS"
    assert made.publishing_profile.end_of_life_date == end_of_life

    assert hook.exclude_from_latest(gallery_group, gallery, d, "1.0.0") is True
    hook.promote(gallery_group, gallery, d, "1.0.0")
    assert hook.exclude_from_latest(gallery_group, gallery, d, "1.0.0") is False
    promoted = hook.compute.gallery_image_versions.get(gallery_group, gallery, d, "1.0.0")
    assert len(promoted.publishing_profile.target_regions) == 2, "promotion must not drop a region"
    assert (promoted.tags or {}).get(TAG_VERSION_RUN) == run_id

    assert hook.delete_version(gallery_group, gallery, d, "1.0.0") is True
    assert hook.version_status(gallery_group, gallery, d, "1.0.0") is None
    assert hook.list_versions(gallery_group, gallery, d) == []
    assert hook.delete_version(gallery_group, gallery, d, "1.0.0") is False


def test_list_versions_of_a_missing_definition_is_empty(hook: GalleryHook, gallery_group: str, gallery: str) -> None:
    assert hook.list_versions(gallery_group, gallery, "no-such-definition") == []
