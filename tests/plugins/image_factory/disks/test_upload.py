"""The page-blob upload against the local Azure's Azurite (real SDK, a storage account made through ARM):
only data is sent, the blob reads back equal, an interrupted or killed upload resumes with the missing
ranges only, a blob of other content is refused before any byte goes out, a rerun sends nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from image_factory.disks.upload import (
    META_SOURCE_DIGEST,
    META_SOURCE_SHA256,
    META_VERIFIED,
    BlobConflictError,
    UploadProgress,
    UploadVerificationError,
    page_ranges,
    upload_vhd,
)
from image_factory.disks.upload_plan import MIB, merge, plan_upload
from image_factory.hooks.storage import StorageHook
from tests.plugins.image_factory.disks.test_upload_plan import vhd_with

ROOT = Path(__file__).resolve().parents[4]
CONTAINER = "vhds"


class Staging:
    """One storage account and container for this module's tests, and a fresh blob name per test."""

    def __init__(self, hook: StorageHook, group: str, account: str) -> None:
        self.hook, self.group, self.account = hook, group, account

    def blob(self, name: str | None = None) -> Any:
        return self.hook.blob_client(self.group, self.account, CONTAINER, name or f"{uuid.uuid4().hex[:8]}.vhd")


@pytest.fixture(scope="module")
def staging(azure_conn: str, arm: Any) -> Iterator[Staging]:
    group = f"test-upload-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(group, {"location": "westeurope", "tags": {"factory": "tests"}})
    hook = StorageHook(azure_conn)
    account = "up" + uuid.uuid4().hex[:14]
    hook.ensure_account(group, account, location="westeurope", tags={"factory": "tests"})
    hook.ensure_container(group, account, CONTAINER)
    yield Staging(hook, group, account)
    arm.resources.resource_groups.begin_delete(group).result()


def disk(path: Path, seed: int = 0) -> Path:
    """A 64 MiB sparse fixed VHD: random extents (one crossing a 4 MiB boundary), written zeros, holes."""
    rnd = os.urandom if seed == 0 else (lambda n: bytes([seed]) * n)
    return vhd_with(path, 64 * MIB, {
        MIB + 512: rnd(9 * MIB),  # 3 ranges
        20 * MIB: bytes(8 * MIB),  # allocated zeros: never sent
        33 * MIB: rnd(100_000),
        40 * MIB: rnd(4 * MIB), 44 * MIB: rnd(4 * MIB), 48 * MIB: rnd(4 * MIB), 52 * MIB: rnd(4 * MIB),
    })


def page_puts(client: Any) -> list[int]:
    """Count the Put Page requests the client's HTTP session sends from now on: their body sizes, in a list."""
    sizes: list[int] = []
    session = client._pipeline._transport.session  # the hook's own session: the bytes that really went out

    def on_response(response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        if request.method == "PUT" and parse_qs(urlsplit(request.url).query).get("comp") == ["page"]:
            sizes.append(int(request.headers["Content-Length"]))

    session.hooks["response"].append(on_response)
    return sizes


def test_only_non_zero_data_is_sent_and_the_blob_reads_back_equal(staging: Staging, tmp_path: Path) -> None:
    path = disk(tmp_path / "d.vhd")
    plan = plan_upload(path)
    client = staging.blob()
    puts = page_puts(client)
    reports: list[UploadProgress] = []

    result = upload_vhd(path, client, threads=4, progress=reports.append, progress_every=0)

    assert sum(puts) == result.bytes_sent == plan.bytes_to_send and len(puts) == result.ranges_sent
    assert result.bytes_sent == 9 * MIB + 100_352 + 16 * MIB + 512  # the data (to whole pages) and the footer
    assert result.allocated >= result.bytes_sent + 8 * MIB  # the written zeros stayed home
    assert result.ranges_skipped_zero >= 2 and result.ranges_present == 0 and result.read_back
    assert result.ranges_sent == result.ranges_planned == len(plan.ranges)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and result.digest == plan.digest
    assert client.download_blob().readall() == path.read_bytes()
    assert page_ranges(client) == merge(plan.ranges)  # nothing else was written
    meta = client.get_blob_properties().metadata
    assert meta[META_SOURCE_DIGEST] == plan.digest and meta[META_VERIFIED] == plan.digest
    assert meta[META_SOURCE_SHA256] == result.sha256
    assert reports[-1].ranges_done == reports[-1].ranges_total == result.ranges_sent
    assert reports[-1].bytes_sent == result.bytes_sent and len(reports) >= 2


def test_an_idempotent_rerun_sends_nothing(staging: Staging, tmp_path: Path) -> None:
    path = disk(tmp_path / "d.vhd")
    client = staging.blob()
    first = upload_vhd(path, client)
    etag = client.get_blob_properties().etag
    puts = page_puts(client)
    again = upload_vhd(path, client)
    assert (again.bytes_sent, again.ranges_sent, again.ranges_present) == (0, 0, first.ranges_planned)
    assert not again.read_back and again.digest == first.digest and puts == []
    assert client.get_blob_properties().etag == etag


def test_labels_are_on_the_blob_from_its_first_byte_and_a_later_upload_relabels_it(staging: Staging,
                                                                                     tmp_path: Path) -> None:
    path = disk(tmp_path / "d.vhd")
    client = staging.blob()

    class Stop(Exception):
        pass

    def stop_at_once(p: UploadProgress) -> None:
        raise Stop

    dead = {"imagefactory_run_id": "run-dead", "imagefactory_expiry": "2026-03-10T12:00:00+00:00"}
    with pytest.raises(Stop):
        upload_vhd(path, client, threads=1, labels=dead, progress=stop_at_once, progress_every=0)
    assert client.get_blob_properties().metadata.items() >= dead.items()  # a killed run's blob says whose it was

    new = {"imagefactory_run_id": "run-new", "imagefactory_expiry": "2026-03-11T12:00:00+00:00"}
    resumed = upload_vhd(path, client, labels=new)
    meta = client.get_blob_properties().metadata
    assert resumed.ranges_present >= 1 and meta.items() >= new.items() and meta[META_VERIFIED] == resumed.digest

    again = {**new, "imagefactory_run_id": "run-third"}
    done = upload_vhd(path, client, labels=again)  # verified already: nothing sent, but the blob is this run's now
    assert done.bytes_sent == 0 and client.get_blob_properties().metadata.items() >= again.items()


def test_an_interrupted_upload_resumes_with_the_missing_ranges_only(staging: Staging, tmp_path: Path) -> None:
    path = disk(tmp_path / "d.vhd")
    plan = plan_upload(path)
    client = staging.blob()

    class Stop(Exception):
        pass

    def stop_after_3(p: UploadProgress) -> None:
        if p.ranges_done >= 3:
            raise Stop

    with pytest.raises(Stop):
        upload_vhd(path, client, threads=2, progress=stop_after_3, progress_every=0)
    present = len(plan.ranges) - len([r for r in plan.ranges if not _inside(r, page_ranges(client))])
    assert 3 <= present < len(plan.ranges)  # what was in flight finished; the rest was never sent
    assert META_VERIFIED not in client.get_blob_properties().metadata

    puts = page_puts(client)
    resumed = upload_vhd(path, client, threads=2)
    assert resumed.ranges_present == present and resumed.ranges_sent == len(plan.ranges) - present
    assert len(puts) == resumed.ranges_sent and resumed.read_back
    assert client.download_blob().readall() == path.read_bytes()
    assert client.get_blob_properties().metadata[META_VERIFIED] == plan.digest


def test_a_killed_upload_leaves_a_blob_that_a_rerun_resumes(staging: Staging, tmp_path: Path) -> None:
    path = disk(tmp_path / "d.vhd")
    plan = plan_upload(path)
    name = f"killed-{uuid.uuid4().hex[:6]}.vhd"
    client = staging.blob(name)
    child = (  # one range at a time, slowly, so it is killed in the middle
        "import sys, time\n"
        "from image_factory.disks.upload import upload_vhd\n"
        "from image_factory.hooks.storage import StorageHook\n"
        "conn, group, account, name, path = sys.argv[1:]\n"
        "blob = StorageHook(conn).blob_client(group, account, 'vhds', name)\n"
        "upload_vhd(path, blob, threads=1, progress=lambda p: time.sleep(0.3), progress_every=0)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    proc = subprocess.Popen([sys.executable, "-c", child, staging.hook.azure_conn_id, staging.group, staging.account,
                             name, str(path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _exists(client) and len(page_ranges(client)) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the upload ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert META_VERIFIED not in client.get_blob_properties().metadata
    present = sum(_inside(r, page_ranges(client)) for r in plan.ranges)
    assert 2 <= present < len(plan.ranges)

    resumed = upload_vhd(path, client)
    assert resumed.ranges_present == present and resumed.ranges_sent == len(plan.ranges) - present
    assert client.download_blob().readall() == path.read_bytes()


def test_a_blob_of_other_content_is_refused_before_any_byte_is_sent(staging: Staging, tmp_path: Path) -> None:
    first, other = disk(tmp_path / "a.vhd", seed=1), disk(tmp_path / "b.vhd", seed=2)
    client = staging.blob()
    upload_vhd(first, client)
    etag = client.get_blob_properties().etag
    puts = page_puts(client)
    with pytest.raises(BlobConflictError) as err:
        upload_vhd(other, client)
    assert client.url in str(err.value) and "same size and sha256-4mib-chunks-v1 digest" in str(err.value)
    assert plan_upload(other).digest in str(err.value)
    assert puts == [] and client.get_blob_properties().etag == etag

    plain = staging.blob()  # a blob some other tool made: no factory metadata
    plain.create_page_blob(64 * MIB + 512)
    with pytest.raises(BlobConflictError, match="no image-factory source metadata"):
        upload_vhd(first, plain)
    assert puts == []

    replaced = upload_vhd(other, client, overwrite=True)  # asked for: started anew
    assert replaced.ranges_present == 0 and replaced.read_back
    assert client.download_blob().readall() == other.read_bytes()


@pytest.mark.parametrize("stray_at", [
    "present",  # a page already in the blob, skipped by the rerun, whose bytes are not the file's
    32 * MIB,  # a page outside the ranges the rerun sends, in a chunk that it sends to and reads back early
])
def test_the_read_back_catches_a_blob_whose_bytes_differ(staging: Staging, tmp_path: Path, stray_at: Any) -> None:
    path = disk(tmp_path / "d.vhd")
    plan = plan_upload(path)
    client = staging.blob()

    def stop(p: UploadProgress) -> None:
        if p.ranges_done >= 2:
            raise InterruptedError

    with pytest.raises(InterruptedError):
        upload_vhd(path, client, threads=1, progress=stop, progress_every=0)
    offset = page_ranges(client)[0][0] if stray_at == "present" else stray_at
    client.upload_page(b"\xee" * 512, offset=offset, length=512)

    with pytest.raises(UploadVerificationError, match="its content read back") as err:
        upload_vhd(path, client)
    assert client.url in str(err.value)
    assert META_VERIFIED not in client.get_blob_properties().metadata
    fixed = upload_vhd(path, client, overwrite=True)  # asked for: started anew
    assert fixed.ranges_sent == len(plan.ranges)
    assert client.download_blob().readall() == path.read_bytes()


def test_bad_arguments_name_the_field(staging: Staging, tmp_path: Path) -> None:
    path = disk(tmp_path / "d.vhd")
    with pytest.raises(ValueError, match=r"^threads: must be between 1 and 64"):
        upload_vhd(path, staging.blob(), threads=0)
    with pytest.raises(ValueError, match=r"^progress_every: must be 0 or more"):
        upload_vhd(path, staging.blob(), progress_every=-1)


def _inside(span: tuple[int, int], present: list[tuple[int, int]]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in present)


def _exists(client: Any) -> bool:
    return bool(client.exists())
