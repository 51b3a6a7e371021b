"""Fixtures for Azure Compute Gallery tests: galleries, definitions, uploaded VHDs, and a timed local Azure."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator.storage import vhd
from tests.localazure import LocalAzure

MIB = 1024 * 1024


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def upload(emu: LocalAzure, path: Path, *, account: str = "factoryvhds", container: str = "vhds",
           name: str | None = None) -> str:
    """Upload a file to the local Azure's blob store; returns its blob URL."""
    name = name or path.name
    with open(path, "rb") as fh:
        resp = requests.put(f"{emu.endpoint}/_emulator/blobs/{account}/{container}/{name}", data=fh,
                            verify=emu.ca, timeout=120)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["url"])


def fixed_vhd(folder: Path, size: int = 8 * MIB, name: str | None = None) -> Path:
    return vhd.write_fixed(folder / (name or f"{uuid.uuid4().hex[:8]}.vhd"), size, b"local azure disk")


def definition_body(location: str, *, os_type: str = "Linux", os_state: str = "Generalized",
                    generation: str = "V2", **extra: Any) -> dict[str, Any]:
    """A definition in the wire format (the SDK sends a dict body as it is)."""
    sku = uuid.uuid4().hex[:8]
    return {
        "location": location,
        "properties": {
            "osType": os_type,
            "osState": os_state,
            "hyperVGeneration": generation,
            "identifier": {"publisher": "ImageFactory", "offer": "debian", "sku": f"12-{sku}"},
            **extra,
        },
    }


def vhd_version_body(location: str, url: str, regions: list[Any] | None = None, **publishing: Any) -> dict[str, Any]:
    """A version from a VHD blob, wire format; ``regions`` are names or targetRegion objects."""
    profile: dict[str, Any] = {**publishing}
    if regions is not None:
        profile["targetRegions"] = [r if isinstance(r, dict) else {"name": r} for r in regions]
    return {
        "location": location,
        "properties": {
            "publishingProfile": profile,
            "storageProfile": {"osDiskImage": {"source": {"uri": url}}},
        },
    }


@pytest.fixture
def gallery(arm, group: str, location: str) -> str:  # type: ignore[no-untyped-def]
    name = unique("gal")
    arm.compute.galleries.begin_create_or_update(group, name, {"location": location}).result()
    return name


@pytest.fixture
def definition(arm, group: str, gallery: str, location: str) -> str:  # type: ignore[no-untyped-def]
    """A generalized Linux V2 definition (what a VHD-based version inherits its OS facts from)."""
    name = unique("debian-12-")
    arm.compute.gallery_images.begin_create_or_update(group, gallery, name, definition_body(location)).result()
    return name


@pytest.fixture
def vhd_url(local_azure: LocalAzure, tmp_path: Path) -> str:
    return upload(local_azure, fixed_vhd(tmp_path))


@pytest.fixture
def new_vhd(local_azure: LocalAzure, tmp_path: Path) -> Callable[..., str]:
    """Upload another fixed VHD: ``new_vhd(size=...)`` → its URL."""
    def make(size: int = 8 * MIB) -> str:
        return upload(local_azure, fixed_vhd(tmp_path, size))
    return make


@pytest.fixture
def replication_faults(local_azure: LocalAzure) -> Iterator[LocalAzure]:
    yield local_azure
    local_azure.ops("DELETE", "replication/faults")


@pytest.fixture(scope="module")
def timed_azure(tmp_path_factory: pytest.TempPathFactory, real_azure: str | None) -> Iterator[LocalAzure]:
    """A second local Azure where Azure's durations run at 2%: a 1 GiB version takes ~1 s in its own
    region and 3-5 s in others, so replication progress is observable."""
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path_factory.mktemp("timed-azure"), time_factor=0.02).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def timed_arm(timed_azure: LocalAzure):  # type: ignore[no-untyped-def]
    """SDK clients pointed at the timed local Azure (the factory's hook, through its own connection)."""
    return timed_azure.hook("timed_local_azure")


@pytest.fixture
def inproc(local_azure: LocalAzure) -> Iterator[Any]:
    """A Context on the session emulator's state, for calling the in-process API compute uses (image_source)."""
    from emulator.core.context import Context
    from emulator.core.store import Store

    store = Store(str(local_azure.state_dir / "state.db"))
    try:
        yield Context(store=store, state_dir=str(local_azure.state_dir))
    finally:
        store.close()
