"""The steps of an import (``source.disk``): a disk file on the worker becomes a published image version.

Everything that can be wrong with the file is found before the first ARM write: ``prepare`` (its
format, and the fixed, whole-MiB VHD Azure takes, footer checked) and ``inspect`` (Hyper-V generation,
OS type and state against the definition) touch only the worker's disk. ``environment`` then makes the
storage side, ``upload`` sends the page blob (resuming an interrupted try) and ``capture`` creates
the image from it; the rest of the run is the build's own (replicate, smoke, promote, report).
Teardown removes the blob and the work folder (``cleanup``) with the run's resource group.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from image_factory import changes
from image_factory.definitions import ImageDefinition
from image_factory.errors import PermanentError
from image_factory.naming import TAG_VERSION_RUN, run_blob_metadata, run_tags
from image_factory.pipeline.build import Build
from image_factory.pipeline.steps import RUN_TTL, timed
from image_factory.plan import PlanError

log = logging.getLogger(__name__)

IMPORT_DIR_ENV = "IMAGE_FACTORY_IMPORT_DIR"  # where relative disk paths point
WORK_DIR_ENV = "IMAGE_FACTORY_WORK_DIR"  # where converted disks are written, one folder per run


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def import_dir() -> Path:
    """Where a relative ``source.disk.path`` (or ``disk_path`` param) is looked up."""
    return Path(os.environ.get(IMPORT_DIR_ENV) or _airflow_home() / "image-factory" / "imports")


def resolve_disk_path(definition: ImageDefinition, override: str | None) -> str:
    """The disk file this run imports, as an absolute path that exists on this worker (PlanError otherwise)."""
    field = "params.disk_path" if override else "source.disk.path"
    raw = override or str((definition.source.disk or {}).get("path", ""))
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = import_dir() / path
    if not path.is_file():
        where = "" if Path(raw).is_absolute() else f" (relative paths are looked up in {import_dir()}, set by {IMPORT_DIR_ENV})"
        raise PlanError(f"{field}: must name a disk image file on the worker; {str(path)!r} is not a file{where}")
    return str(path.resolve())


def work_dir(plan: dict[str, Any]) -> Path:
    """The run's own folder for the converted disk (removed by teardown)."""
    base = Path(os.environ.get(WORK_DIR_ENV) or _airflow_home() / "image-factory" / "work")
    return base / f"{plan['image']}-{plan['digest']}"


def _rejected(exc: Exception) -> PermanentError:
    """A disk that contradicts its definition or is not a disk image: no retry can fix it."""
    return PermanentError(f"source.disk: {exc}")


# 1. prepare: the fixed, whole-MiB VHD Azure takes (no conversion for a sound fixed VHD) ---------------------
FORMAT_FAMILIES = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd-fixed": "vhd", "vhd-dynamic": "vhd",
                   "vhdx": "vhdx"}


def prepare(b: Build) -> dict[str, Any]:
    """Detect the file's format (it must be the declared one), convert it in the run's work folder if needed."""
    from image_factory.disks import convert

    def run() -> dict[str, Any]:
        source = b.plan["source"]
        folder = work_dir(b.plan)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            planned = convert.plan_conversion(source["disk"])
            found = FORMAT_FAMILIES.get(planned.detected.format, planned.detected.format)
            wanted = source.get("format", "auto")
            if wanted not in ("auto", found):
                raise ValueError(f"format: the definition says {wanted} but {source['disk']} is a "
                                 f"{planned.detected.format} disk ({planned.detected.evidence})")
            result = convert.convert_to_fixed_vhd(source["disk"], folder)
        except (ValueError, OSError) as exc:
            raise _rejected(exc) from exc
        out = result.as_dict()
        log.info("Prepared %s (%s): %s", source["disk"], out["source_format"],
                 out["note"] or ("converted to a fixed VHD" if out["converted"] else "already a sound fixed VHD"))
        return out
    return timed(run)


# 2. inspect: does the disk match the definition? (Hyper-V generation, OS type and state) ---------------------
def inspect(b: Build, prepared: dict[str, Any]) -> dict[str, Any]:
    """Read the prepared VHD's partition table and root filesystem; any contradiction stops the run here."""
    from image_factory.disks import inspection as disk_inspect
    from image_factory.disks.packages import installed_packages

    def run() -> dict[str, Any]:
        d = b.definition
        try:
            report = disk_inspect.inspect_disk(prepared["path"], work_dir=work_dir(b.plan))
            disk_inspect.check_against(report, os_type=d.os_type, os_state=d.os_state,
                                       hyper_v_generation=d.hyper_v_generation)
        except (ValueError, OSError) as exc:
            raise _rejected(exc) from exc
        log.info("%s", report.summary())
        return {**report.as_dict(), "source_format": prepared["source_format"], "host": socket.gethostname(),
                "packages": installed_packages(report)}
    return timed(run)


# 3. environment: the run's group (smoke VMs), the gallery side, the staging account ------------------------
def environment(b: Build) -> dict[str, Any]:
    from image_factory.hooks.storage import StorageHook
    from image_factory.pipeline.steps import ensure_gallery_side

    def run() -> dict[str, Any]:
        d, st = b.definition, b.plan["staging"]
        tags = run_tags(d.name, b.plan["run_id"], datetime.now(UTC), RUN_TTL)
        b.groups.ensure_resource_group(b.resource_group, d.build_location, tags)
        permanent = ensure_gallery_side(b)
        if st["resource_group"] != d.gallery_resource_group:
            b.groups.ensure_resource_group(st["resource_group"], d.build_location, permanent)
        storage = StorageHook(b.azure_conn_id)
        account_id = storage.ensure_account(st["resource_group"], st["storage_account"], location=d.build_location,
                                            tags=permanent)
        storage.ensure_container(st["resource_group"], st["storage_account"], st["container"])
        return {"resource_group": b.resource_group, "storage_account_id": account_id,
                "blob_url": storage.blob_url(st["resource_group"], st["storage_account"], st["container"], st["blob"])}
    return timed(run)


# 4. upload: a page blob, sent in parallel, empty ranges skipped, resumable, verified ---------------------
def upload(b: Build, prepared: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    from image_factory.disks import upload as disk_upload
    from image_factory.hooks.storage import StorageHook

    def run() -> dict[str, Any]:
        st = b.plan["staging"]
        client = StorageHook(b.azure_conn_id).blob_client(st["resource_group"], st["storage_account"],
                                                          st["container"], st["blob"])
        threads = int((b.definition.source.disk or {}).get("upload_threads") or disk_upload.DEFAULT_THREADS)
        try:
            # the run's tags, so the sweeper can tell a blob a dead run left from one a live run is writing
            labels = run_blob_metadata(run_tags(b.definition.name, b.plan["run_id"], datetime.now(UTC), RUN_TTL))
            result = disk_upload.upload_vhd(Path(prepared["path"]), client, threads=threads, labels=labels)
        except disk_upload.BlobConflictError as exc:
            raise PermanentError(f"staging blob {st['container']}/{st['blob']}: {exc}") from exc
        out = result.as_dict()
        log.info("Uploaded %s: %d of %d bytes sent (%d ranges already there, %d empty ranges skipped), verified "
                 "by reading the blob back: %s", prepared["path"], out["bytes_sent"], out["size"],
                 out["ranges_present"], out["ranges_skipped_zero"], out["read_back"])
        return {**out, "blob_url": env["blob_url"]}
    return timed(run)


# 5. capture: the managed image and/or the gallery version, from the blob ------------------------------------
def capture(b: Build, env: dict[str, Any], uploaded: dict[str, Any]) -> dict[str, Any]:
    """Like a build's capture, with the uploaded VHD as the source (excluded from latest until promoted)."""
    from image_factory.pipeline.steps import begin_version, managed_image_name

    def run() -> dict[str, Any]:
        d, plan = b.definition, b.plan
        out: dict[str, Any] = {"version": plan["version"]}
        tags = {TAG_VERSION_RUN: plan["run_id"][:256], "image": d.name,
                changes.TAG_SOURCE: changes.source_tag(plan["source"]), "reason": str(plan.get("reason", ""))[:256],
                "imported-sha256": str(uploaded.get("sha256", ""))[:256]}
        if d.managed_image:
            m = d.managed_image
            out["managed_image_id"] = b.compute.ensure_managed_image(
                m["resource_group"], managed_image_name(m["name"], plan["version"]), location=m["location"],
                blob_uri=env["blob_url"], os_type=d.os_type, hyper_v_generation=d.hyper_v_generation, tags=tags)
        if d.gallery_version:
            out["version_id"] = begin_version(b, tags, vhd=(env["blob_url"], env["storage_account_id"]))
        return out
    return timed(run)


# teardown: the blob and the work folder (the run's group goes with the build's teardown) ---------------------
def cleanup(plan: dict[str, Any], azure_conn_id: str) -> dict[str, Any]:
    """Delete the run's staging blob and converted disk; what is already gone is not an error.

    Only a blob the factory's upload wrote is deleted: one under that name with someone else's content
    (the upload refused to touch it) is theirs to keep."""
    from azure.core.exceptions import ResourceNotFoundError

    from image_factory.disks.upload import META_TOOL, TOOL
    from image_factory.hooks.storage import StorageHook

    st = plan["staging"]
    storage = StorageHook(azure_conn_id)
    outcome = "absent"
    try:
        blob = storage.blob_client(st["resource_group"], st["storage_account"], st["container"], st["blob"])
        made_by = (blob.get_blob_properties().metadata or {}).get(META_TOOL)
    except ResourceNotFoundError:  # no account, container or blob: the run never got that far
        made_by = None
    else:
        outcome = "kept (not the factory's upload)"
        if made_by == TOOL:
            storage.delete_blob(st["resource_group"], st["storage_account"], st["container"], st["blob"])
            outcome = "deleted"
    folder = work_dir(plan)
    existed = folder.exists()
    shutil.rmtree(folder, ignore_errors=True)
    return {"blob": outcome, "work_dir_deleted": existed}
