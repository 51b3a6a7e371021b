"""The blob store's operations API: streamed uploads, properties with the VHD verdict, listing, deletion."""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from emulator.storage import blobs, vhd

MIB = 1024 * 1024


def _put(emu, account, container, name, data):  # type: ignore[no-untyped-def]
    return requests.put(f"{emu.endpoint}/_emulator/blobs/{account}/{container}/{name}", data=data, verify=emu.ca,
                        timeout=120)


def test_upload_inspect_list_delete(local_azure, tmp_path):
    path = vhd.write_fixed(tmp_path / "disk.vhd", 2 * MIB, b"hello")
    name = f"golden/{uuid.uuid4().hex[:6]}.vhd"
    with open(path, "rb") as fh:
        resp = _put(local_azure, "factoryvhds", "vhds", name, fh)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["url"] == f"https://factoryvhds.blob.core.windows.net/vhds/{name}"
    assert body["size"] == 2 * MIB + 512
    assert body["vhd"] == {"valid": True, "diskType": "Fixed", "virtualSize": 2 * MIB}
    stored = local_azure.state_dir / "blobs" / "factoryvhds" / "vhds" / name
    assert stored.read_bytes() == path.read_bytes()

    got = local_azure.ops("GET", f"blobs/factoryvhds/vhds/{name}")
    assert got["size"] == body["size"] and got["vhd"]["valid"] is True
    assert name in [b["name"] for b in local_azure.ops("GET", "blobs")["value"]]

    local_azure.ops("DELETE", f"blobs/factoryvhds/vhds/{name}")
    assert not stored.exists()
    with pytest.raises(RuntimeError, match="404"):
        local_azure.ops("GET", f"blobs/factoryvhds/vhds/{name}")


def test_large_upload_is_streamed_to_disk(local_azure):
    """64 MiB in 1 MiB chunks from a generator: the body never needs to fit in one buffer."""
    size = 64 * MIB

    def chunks():  # type: ignore[no-untyped-def]
        block = os.urandom(MIB)
        for _ in range(size // MIB):
            yield block

    name = f"big-{uuid.uuid4().hex[:6]}.raw"
    resp = _put(local_azure, "factoryvhds", "big", name, chunks())
    assert resp.status_code == 201 and resp.json()["size"] == size
    assert resp.json()["vhd"]["valid"] is False and resp.json()["vhd"]["reason"] == "cookie"
    local_azure.ops("DELETE", f"blobs/factoryvhds/big/{name}")


def test_replacing_a_blob_is_atomic_and_logged(local_azure):
    name = f"r-{uuid.uuid4().hex[:6]}.bin"
    assert _put(local_azure, "factoryvhds", "vhds", name, b"one").status_code == 201
    assert _put(local_azure, "factoryvhds", "vhds", name, b"second").status_code == 201
    assert local_azure.ops("GET", f"blobs/factoryvhds/vhds/{name}")["size"] == len(b"second")
    assert local_azure.request_counts().get("emulator/blobs/write", 0) >= 2
    leftovers = [p for p in (local_azure.state_dir / "blobs" / "factoryvhds" / "vhds").iterdir()
                 if p.name.endswith(".part")]
    assert leftovers == []


@pytest.mark.parametrize(("account", "container", "name", "code"), [
    ("Upper", "vhds", "a.vhd", "AccountNameInvalid"),
    ("ab", "vhds", "a.vhd", "AccountNameInvalid"),
    ("factoryvhds", "Bad_Container", "a.vhd", "InvalidResourceName"),
    ("factoryvhds", "vhds", ".hidden", "InvalidResourceName"),
    ("factoryvhds", "vhds", "a%2F..%2F..%2Fescape", "InvalidResourceName"),  # percent-encoded: requests would fold a literal ../
])
def test_invalid_names_are_refused(local_azure, account, container, name, code):
    resp = _put(local_azure, account, container, name, b"x")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == code


def test_parse_url():
    assert blobs.parse_url("https://acct1.blob.core.windows.net/vhds/dir/disk.vhd") == ("acct1", "vhds", "dir/disk.vhd")
    for bad in ("https://example.com/vhds/disk.vhd", "https://acct1.blob.core.windows.net/vhds", "ftp://x"):
        with pytest.raises(ValueError):
            blobs.parse_url(bad)


def test_zero_ranges_of_an_upload_stay_holes(local_azure, tmp_path):
    """A mostly-empty disk uploads as a sparse file: same bytes, a fraction of the blocks."""
    path = vhd.write_fixed(tmp_path / "sparse.vhd", 64 * MIB, os.urandom(MIB))
    name = f"sparse-{uuid.uuid4().hex[:6]}.vhd"
    with open(path, "rb") as fh:
        resp = _put(local_azure, "factoryvhds", "vhds", name, fh)
    assert resp.status_code == 201, resp.text
    stored = local_azure.state_dir / "blobs" / "factoryvhds" / "vhds" / name
    assert stored.read_bytes() == path.read_bytes()
    assert stored.stat().st_blocks * 512 < 8 * MIB < stored.stat().st_size
    local_azure.ops("DELETE", f"blobs/factoryvhds/vhds/{name}")
