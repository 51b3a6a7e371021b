"""The disks behind image versions: one master per version and one replica per target region.

Every region is its own store (``<state dir>/regions/{region}/gallery/...``). A file-backed disk
is replicated by hard-linking its file into the region's store (a copy when links are not
possible): the bytes are immutable, so a link is a faithful copy that costs nothing, and
deleting the source (a managed image, a blob) leaves the replicas intact. Descriptors without a
file (the simulated runtime's) are copied as data.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from emulator.core.context import Context

log = logging.getLogger(__name__)


def _slug(version_id: str) -> str:
    parts = version_id.rstrip("/").split("/")
    digest = hashlib.sha1(version_id.lower().encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{parts[-5]}-{parts[-3]}-{parts[-1]}-{digest}".lower()


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _place(disk: dict[str, Any], where: Path) -> dict[str, Any]:
    out = copy.deepcopy(disk)
    path = disk.get("path")
    if isinstance(path, str) and Path(path).is_file():
        dst = where / Path(path).name
        _link(Path(path), dst)
        out["path"] = str(dst)
    return out


def is_file_backed(disk: dict[str, Any] | None) -> bool:
    return bool(disk) and isinstance(disk.get("path"), str)  # type: ignore[union-attr]


def master(ctx: Context, disk: dict[str, Any], version_id: str) -> dict[str, Any]:
    """The version's own copy of its source disk (sources such as images keep theirs)."""
    return _place(disk, Path(ctx.state_dir) / "gallery" / "masters" / _slug(version_id))


def replica(ctx: Context, disk: dict[str, Any], version_id: str, region: str) -> dict[str, Any]:
    """The copy of a version's disk held in ``region``."""
    return _place(disk, Path(ctx.state_dir) / "regions" / region / "gallery" / _slug(version_id))


def release(ctx: Context, disk: dict[str, Any] | None) -> None:
    """Free a disk this version owns: tell the guest runtime, then remove its file if it is ours."""
    if not disk:
        return
    guests = ctx.extras.get("guests")
    if guests is not None and hasattr(guests, "release_disk"):
        try:
            guests.release_disk(disk)
        except Exception:  # freeing is best effort: a runtime that does not know this disk must not block a delete
            log.warning("guest runtime could not release disk %s", disk, exc_info=True)
    path = disk.get("path")
    if not isinstance(path, str):
        return
    p = Path(path)
    state = Path(ctx.state_dir).resolve()
    if p.is_file() and state in p.resolve().parents:
        p.unlink()
        _prune(p.parent, state)


def _prune(folder: Path, stop: Path) -> None:
    """Remove directories left empty, up to the state directory."""
    while folder.resolve() != stop and stop in folder.resolve().parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
