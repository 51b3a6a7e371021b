"""The disks behind image versions: one master per version and one replica per target region.

Every region is its own store (``<state dir>/regions/{region}/gallery/...``). The master is a
hard link to the source's file (the bytes are immutable, and deleting the source, a managed
image or a blob, leaves it intact). A replica of a real file is a real copy, made in the
background by the copier (replication.py decides, copier.py copies, sparse.py keeps the holes);
each copy gets a folder of its own so a cancelled copy and its successor never share a file.
Descriptors without a file (the simulated runtime's) are copied as data.
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
from emulator.services.gallery import copier
from emulator.storage import sparse

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


def is_real_file(disk: dict[str, Any] | None) -> bool:
    """A disk whose bytes are a file here ("file", "vhd"): replicated by copying them."""
    return is_file_backed(disk) and Path(disk["path"]).is_file()  # type: ignore[index]


def master(ctx: Context, disk: dict[str, Any], version_id: str) -> dict[str, Any]:
    """The version's own copy of its source disk (sources such as images keep theirs)."""
    return _place(disk, Path(ctx.state_dir) / "gallery" / "masters" / _slug(version_id))


def replica(ctx: Context, disk: dict[str, Any], version_id: str, region: str) -> dict[str, Any]:
    """The copy of a version's disk held in ``region``."""
    return _place(disk, Path(ctx.state_dir) / "regions" / region / "gallery" / _slug(version_id))


def planned_replica(ctx: Context, disk: dict[str, Any], version_id: str, region: str, copy_id: str) -> dict[str, Any]:
    """The descriptor of ``region``'s copy of a real file, before the copier has written it."""
    out = copy.deepcopy(disk)
    where = Path(ctx.state_dir) / "regions" / region / "gallery" / _slug(version_id) / copy_id[:12]
    out["path"] = str(where / Path(disk["path"]).name)
    return out


def discard_copy(ctx: Context, path: str | None) -> None:
    """Stop a copy to ``path`` and remove whatever it wrote (partial or whole)."""
    if not path:
        return
    copier.cancel(ctx, path)
    p = Path(path)
    state = Path(ctx.state_dir).resolve()
    if state not in p.resolve().parents:
        return
    sparse.tmp_path(p).unlink(missing_ok=True)
    p.unlink(missing_ok=True)
    _prune(p.parent, state)


def release(ctx: Context, disk: dict[str, Any] | None) -> None:
    """Free a disk this version owns: tell the guest runtime, then remove its file if it is ours."""
    if not disk:
        return
    if isinstance(disk.get("path"), str):
        copier.cancel(ctx, disk["path"])  # still being copied: stop that first
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
    if state in p.resolve().parents:
        sparse.tmp_path(p).unlink(missing_ok=True)
        if p.is_file():
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
