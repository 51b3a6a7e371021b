"""Replication of a real VHD: every region gets a real, sparse, byte-identical copy, its progress is the
copy's, and faults, deletes and restarts in the middle of a copy leave no partial file behind.

The emulator runs at time factor 0 (no Azure pace: the copy's own duration is all there is) with
copies throttled through the ``copy_rate_mb_s`` setting so that progress can be watched. The VHD
(256 MiB apparent, 24 MiB of data in scattered extents) is put straight into the blob store's
folder: a sparse upload, as azcopy makes of a page blob (a streamed PUT writes every zero).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.core.context import Context
from emulator.core.store import Store
from emulator.storage import blobs, vhd
from tests.emulator.services.gallery.conftest import definition_body, unique, vhd_version_body
from tests.localazure import LocalAzure

pytestmark = pytest.mark.slow
MIB = 1024 * 1024
SIZE = 256 * MIB
EXTENTS = [(0, 8 * MIB), (64 * MIB, 4 * MIB), (130 * MIB, 6 * MIB), (200 * MIB + 4096, 5 * MIB), (SIZE - MIB, MIB)]
LOCATION = "westeurope"
REGIONS = [LOCATION, "eastus", "japaneast"]


@pytest.fixture(scope="module")
def copy_azure(tmp_path_factory: pytest.TempPathFactory, real_azure: str | None) -> Iterator[LocalAzure]:
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path_factory.mktemp("copy-azure"), time_factor=0.0).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def copy_arm(copy_azure: LocalAzure):  # type: ignore[no-untyped-def]
    return copy_azure.hook("copy_local_azure")


@pytest.fixture
def setup(copy_arm, copy_azure: LocalAzure) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    group = unique("test-copy-")
    copy_arm.resources.resource_groups.create_or_update(group, {"location": LOCATION})
    gallery = unique("gal")
    copy_arm.compute.galleries.begin_create_or_update(group, gallery, {"location": LOCATION}).result()
    copy_arm.compute.gallery_images.begin_create_or_update(group, gallery, "img", definition_body(LOCATION)).result()
    name = f"{gallery}.vhd"
    ctx = Context(store=None, state_dir=str(copy_azure.state_dir))  # type: ignore[arg-type]  # paths only
    src = _sparse_vhd(blobs.path_of(ctx, "factoryvhds", "vhds", name))
    try:
        yield {"group": group, "gallery": gallery, "src": src, "url": blobs.url_of("factoryvhds", "vhds", name),
               "emu": copy_azure}
    finally:
        copy_azure.settings(copy_rate_mb_s=0)
        src.unlink(missing_ok=True)


def _sparse_vhd(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    vhd.write_fixed(path, SIZE)
    fd = os.open(path, os.O_WRONLY)
    try:
        for start, length in EXTENTS:
            os.pwrite(fd, os.urandom(length), start)
    finally:
        os.close(fd)
    return path


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def _files(s: dict[str, Any], region: str) -> list[Path]:
    """Everything (copies and partial copies) the version's gallery holds in ``region``'s store."""
    root = s["emu"].state_dir / "regions" / region / "gallery"
    return sorted(p for p in root.glob(f"{s['gallery'].lower()}-*/**/*") if p.is_file())


def _status(arm, s: dict[str, Any], version: str) -> tuple[str, str, dict[str, tuple[str, int]]]:  # type: ignore[no-untyped-def]
    v = arm.compute.gallery_image_versions.get(s["group"], s["gallery"], "img", version, expand="ReplicationStatus")
    rs = v.replication_status
    return v.provisioning_state, rs.aggregated_state, {x.region: (x.state, x.progress) for x in rs.summary}


def _wait(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _create(arm, s: dict[str, Any], version: str, regions: list[str]):  # type: ignore[no-untyped-def]
    return arm.compute.gallery_image_versions.begin_create_or_update(
        s["group"], s["gallery"], "img", version,
        vhd_version_body(LOCATION, s["url"], [{"name": r, "regionalReplicaCount": 2,
                                               "storageAccountType": "Standard_ZRS"} for r in regions]))


def _internal(emu: LocalAzure, s: dict[str, Any], version: str) -> dict[str, Any]:
    store = Store(str(emu.state_dir / "state.db"))
    try:
        found = [r for r in store.all() if r.id.lower().endswith(f"/{s['gallery']}/images/img/versions/{version}")]
        return found[0].internal
    finally:
        store.close()


def test_every_region_gets_a_real_sparse_identical_copy_with_real_progress(copy_arm, setup) -> None:  # type: ignore[no-untyped-def]
    s = setup
    s["emu"].settings(copy_rate_mb_s=16)  # 24 MiB per region: ~1.5 s each, two at a time
    poller = _create(copy_arm, s, "1.0.0", REGIONS)
    seen: dict[str, list[int]] = {}

    def look() -> bool:
        state, _agg, regions = _status(copy_arm, s, "1.0.0")
        for region, (_st, progress) in regions.items():
            seen.setdefault(region, []).append(progress)
        return state == "Succeeded"

    _wait(look)
    assert poller.result().provisioning_state == "Succeeded"
    _state, aggregated, regions = _status(copy_arm, s, "1.0.0")
    assert aggregated == "Completed" and set(regions.values()) == {("Completed", 100)}
    assert any(0 < p < 100 for progress in seen.values() for p in progress)  # progress was watched mid-copy
    for progress in seen.values():
        assert progress == sorted(progress) and progress[-1] == 100

    want = _sha(s["src"])
    inodes = {s["src"].stat().st_ino}
    for region in REGIONS:
        files = _files(s, region)
        assert len(files) == 1 and files[0].suffix == ".vhd"
        st = files[0].stat()
        assert st.st_size == SIZE + vhd.FOOTER_SIZE
        assert st.st_blocks * 512 < 40 * MIB  # holes stayed holes (24 MiB of data in 256 MiB)
        assert st.st_nlink == 1 and st.st_ino not in inodes  # a copy of its own, not a link
        inodes.add(st.st_ino)
        assert _sha(files[0]) == want
        vhd.check_fixed(files[0])

    internal = _internal(s["emu"], s, "1.0.0")
    for region in REGIONS:
        rec = internal["regions"][region]
        assert (rec["replica_count"], rec["storage_account_type"]) == (2, "Standard_ZRS")
        assert rec["copy"]["state"] == "done" and rec["copy"]["total"] >= 24 * MIB


def test_a_region_fault_fails_its_copy_and_removes_the_partial_file(copy_arm, setup) -> None:  # type: ignore[no-untyped-def]
    s = setup
    s["emu"].settings(copy_rate_mb_s=16)
    s["emu"].ops("POST", "replication/faults", {"region": "eastus", "message": "East US storage is down.", "count": 1})
    try:
        poller = _create(copy_arm, s, "1.0.0", [LOCATION, "eastus"])
        with pytest.raises(HttpResponseError) as err:
            poller.result()
    finally:
        s["emu"].ops("DELETE", "replication/faults")
    assert "East US storage is down." in str(err.value.message)
    state, aggregated, regions = _status(copy_arm, s, "1.0.0")
    assert (state, aggregated) == ("Failed", "Failed")
    assert regions == {"West Europe": ("Completed", 100), "East US": ("Failed", 40)}
    assert _files(s, "eastus") == []
    assert [_sha(p) for p in _files(s, LOCATION)] == [_sha(s["src"])]


def test_deleting_a_version_mid_copy_cancels_and_removes_every_copy(copy_arm, setup) -> None:  # type: ignore[no-untyped-def]
    s = setup
    s["emu"].settings(copy_rate_mb_s=4)  # ~6 s per region: still copying when the delete comes
    _create(copy_arm, s, "1.0.0", REGIONS)
    _wait(lambda: any(0 < p < 100 for _st, p in _status(copy_arm, s, "1.0.0")[2].values()))
    assert any(_files(s, r) for r in REGIONS)  # partial copies exist
    copy_arm.compute.gallery_image_versions.begin_delete(s["group"], s["gallery"], "img", "1.0.0").result()
    _wait(lambda: not any(_files(s, r) for r in REGIONS), timeout=10)
    time.sleep(1.0)  # the cancelled workers must not write anything afterwards
    assert not any(_files(s, r) for r in REGIONS)


def test_a_restart_mid_copy_starts_the_copies_again_and_completes(copy_arm, setup) -> None:  # type: ignore[no-untyped-def]
    s = setup
    emu: LocalAzure = s["emu"]
    emu.settings(copy_rate_mb_s=6)
    _create(copy_arm, s, "1.0.0", [LOCATION, "eastus"])
    _wait(lambda: any(0 < p < 100 for _st, p in _status(copy_arm, s, "1.0.0")[2].values()))
    emu.restart()
    state, aggregated, regions = _status(copy_arm, s, "1.0.0")
    assert (state, aggregated) == ("Creating", "InProgress")
    assert all(st == "Replicating" for st, _p in regions.values())
    emu.settings(copy_rate_mb_s=0)
    _wait(lambda: _status(copy_arm, s, "1.0.0")[0] == "Succeeded")
    assert set(_status(copy_arm, s, "1.0.0")[2].values()) == {("Completed", 100)}
    want = _sha(s["src"])
    for region in (LOCATION, "eastus"):
        files = _files(s, region)
        assert [f.name for f in files] == [s["src"].name]  # no partial file left by the first run
        assert _sha(files[0]) == want


def test_a_crash_mid_copy_leaks_no_partial_file(copy_arm, setup) -> None:  # type: ignore[no-untyped-def]
    s = setup
    emu: LocalAzure = s["emu"]
    emu.settings(copy_rate_mb_s=4)
    _create(copy_arm, s, "1.0.0", [LOCATION])
    _wait(lambda: any(p.name.endswith(".tmp") for p in _files(s, LOCATION)))
    assert emu.proc is not None
    emu.proc.kill()  # no shutdown: the partial copy stays on disk
    emu.proc.wait(15)
    assert any(p.name.endswith(".tmp") for p in _files(s, LOCATION))
    emu.start()
    emu.settings(copy_rate_mb_s=0)
    _wait(lambda: _status(copy_arm, s, "1.0.0")[0] == "Succeeded")
    files = _files(s, LOCATION)
    assert [f.name for f in files] == [s["src"].name] and _sha(files[0]) == _sha(s["src"])
