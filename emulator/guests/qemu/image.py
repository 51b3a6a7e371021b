"""The Debian 12 base image for QEMU guests: built from Debian's packages, cached by content.

The cache is content-addressed. Each call first resolves, without a chroot, which package
versions a build would install now (``resolve.py``: ``apt-get update`` + a simulated install
into a private apt directory, a few seconds). The cache key hashes that manifest together
with the recipe (``rootfs.recipe``: packages, mmdebstrap options, every file written). A key
already in the cache is returned at once; otherwise the image is built (mmdebstrap, ~1.5 min),
in a temporary directory renamed into place, under a lock. So a rebuild after a Debian update
is a new image with a new Marketplace version, and a rebuild with nothing new costs nothing.

Marketplace version: ``0.<YYYYMMDD>.<n>``, YYYYMMDD the newest archive snapshot (InRelease
Date) the content was resolved from, ``n`` a 24-bit int from the cache key: Azure-style
Major.Minor.Patch ints (like Debian's "0.20250316.2062"). Offline (mirror unreachable), the
newest cached image of the same recipe is returned instead, with a logged warning.

Building needs root (or unprivileged user namespaces: mmdebstrap ``--mode=auto``), no loop
device and no mount. Cache entries are never modified and never deleted here: VM overlay disks
use them as backing files, so an old version stays bootable as long as its entry is kept.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from emulator.guests.qemu import disk, rootfs
from emulator.guests.qemu.resolve import manifest_digest, resolve
from emulator.guests.qemu.tools import ensure_tools, tool

DISK_SIZE_MIB = 2048
RECIPE_REVISION = 1  # bump when the build steps change in a way the recipe dict does not show
META = "image.json"

Log = Callable[[str], None]


@dataclass(frozen=True)
class BaseImage:
    qcow2: Path
    kernel: Path
    initrd: Path
    root_uuid: str
    cmdline: str
    version: str  # Marketplace version, Major.Minor.Patch
    manifest: dict[str, str] = field(hash=False)  # package -> version, as installed
    size: int  # virtual disk size in bytes
    key: str = ""  # cache key (recipe + resolved packages)
    built_at: str = ""  # when this image was built (unchanged when the cache is reused)


def default_cache_dir() -> Path:
    """LOCAL_AZURE_IMAGE_CACHE, else ~/.cache/local-azure/images (outside any checkout)."""
    env = os.environ.get("LOCAL_AZURE_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "local-azure" / "images"


def recipe_digest(suite: str) -> str:
    recipe = {"revision": RECIPE_REVISION, "disk_mib": DISK_SIZE_MIB, **rootfs.recipe(suite)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def cache_key(recipe: str, manifest: dict[str, str]) -> str:
    return hashlib.sha256(f"{recipe}\n{manifest_digest(manifest)}".encode()).hexdigest()


def marketplace_version(snapshot_date: str, key: str) -> str:
    """``0.<YYYYMMDD>.<int of 24 bits of key>``: three ints, within Azure's int32 parts."""
    if len(snapshot_date) != 8 or not snapshot_date.isdigit():
        raise ValueError(f"snapshot date must be YYYYMMDD, not {snapshot_date!r}")
    return f"0.{int(snapshot_date)}.{int(key[:6], 16)}"


def cmdline(root_uuid: str) -> str:
    return f"root=UUID={root_uuid} ro console=ttyS0"


def _load(entry: Path) -> BaseImage:
    meta = json.loads((entry / META).read_text())
    return BaseImage(
        qcow2=entry / "disk.qcow2",
        kernel=entry / "vmlinuz",
        initrd=entry / "initrd.img",
        root_uuid=meta["root_uuid"],
        cmdline=meta["cmdline"],
        version=meta["version"],
        manifest=meta["manifest"],
        size=meta["size"],
        key=meta["key"],
        built_at=meta["built_at"],
    )


@contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _newest_for_recipe(cache_dir: Path, recipe: str) -> BaseImage | None:
    found = []
    for meta in cache_dir.glob(f"*/{META}"):
        data = json.loads(meta.read_text())
        if data.get("recipe") == recipe:
            found.append((data["built_at"], meta.parent))
    return _load(max(found)[1]) if found else None


def build_base_image(
    cache_dir: Path | None = None, *, suite: str = "bookworm", log: Log = print, refresh: bool = True
) -> BaseImage:
    """The cached base image for the current Debian package set, building it if new.

    ``refresh=False`` skips asking the mirror and returns the newest image of this recipe
    (building only when there is none).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    ensure_tools()
    recipe = recipe_digest(suite)
    with _locked(cache_dir):
        for stale in cache_dir.glob(".build-*"):  # left by a killed build: we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        if not refresh and (cached := _newest_for_recipe(cache_dir, recipe)):
            return cached
        try:
            resolution = resolve(cache_dir / ".apt", suite, rootfs.PACKAGES)
        except RuntimeError as err:
            cached = _newest_for_recipe(cache_dir, recipe)
            if cached is None:
                raise
            log(f"could not refresh the package lists ({err}); using cached image {cached.version}")
            return cached
        key = cache_key(recipe, resolution.manifest)
        entry = cache_dir / key[:24]
        if (entry / META).exists():
            return _load(entry)
        version = marketplace_version(resolution.snapshot_date, key)
        log(f"building Debian {suite} base image {version} ({len(resolution.manifest)} packages)")
        _build(entry, suite, recipe, key, version, log)
        return _load(entry)


def _build(entry: Path, suite: str, recipe: str, key: str, version: str, log: Log) -> None:
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=entry.parent))
    try:
        root = work / "rootfs"
        out = work / "image"
        out.mkdir()
        root_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-azure-image:{key}"))
        started = time.monotonic()
        rootfs.debootstrap(root, suite, work, log)
        log(f"  mmdebstrap: {time.monotonic() - started:.0f} s")
        rootfs.customize(root, root_uuid)
        manifest = rootfs.installed_manifest(root)
        kernel, initrd = rootfs.kernel_files(root)
        rootfs.copy_out(kernel, out / "vmlinuz")
        rootfs.copy_out(initrd, out / "initrd.img")
        disk.make_disk(root, out / "disk.qcow2", root_uuid, DISK_SIZE_MIB)
        meta = {
            "key": key,
            "recipe": recipe,
            "suite": suite,
            "version": version,
            "root_uuid": root_uuid,
            "cmdline": cmdline(root_uuid),
            "manifest": manifest,
            "size": disk.virtual_size(out / "disk.qcow2"),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (out / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        for done in out.iterdir():  # immutable: VM overlays use these files as their backing
            done.chmod(0o444)
        os.rename(out, entry)  # atomic: the entry is complete or absent
        log(f"  built in {meta['build_seconds']} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# what ``export`` writes: qemu-img's output format and options (a dynamic VHD, as Hyper-V makes by default)
EXPORT_FORMATS = {"qcow2": ("qcow2", []), "raw": ("raw", []), "vmdk": ("vmdk", []), "vhdx": ("vhdx", []),
                  "vhd": ("vpc", ["-o", "subformat=dynamic"]), "vhd-fixed": ("vpc", ["-o", "subformat=fixed,force_size=on"])}


def export_disk(image: BaseImage, dest: Path, fmt: str = "qcow2") -> Path:
    """The base image as a standalone disk file (no backing file): what an on-premises build would hand over.

    It boots the way Azure would find it, from its own partition table and /boot (the local Azure reads the
    kernel from the disk), and it is generalized: empty machine-id, no SSH host keys, no users."""
    out_format, options = EXPORT_FORMATS[fmt]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.part")
    try:
        subprocess.run([tool("qemu-img"), "convert", "-q", "-f", "qcow2", "-O", out_format, *options,
                        str(image.qcow2), str(partial)], check=True, capture_output=True, timeout=600)
        partial.chmod(0o644)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.guests.qemu.image")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) the Debian base image")
    build.add_argument("--cache-dir", type=Path, default=None)
    build.add_argument("--suite", default="bookworm")
    build.add_argument("--offline", action="store_true", help="reuse the newest cached image, no mirror")
    export = sub.add_parser("export", help="write the base image as a disk file, as an on-premises disk to import")
    export.add_argument("dest", type=Path)
    export.add_argument("--format", default="qcow2", choices=sorted(EXPORT_FORMATS))
    export.add_argument("--cache-dir", type=Path, default=None)
    export.add_argument("--offline", action="store_true", help="reuse the newest cached image, no mirror")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.command == "export":
        image = build_base_image(args.cache_dir, refresh=not args.offline)
        written = export_disk(image, args.dest, args.format)
        print(f"exported {image.version} to {written} ({args.format}, {written.stat().st_size // 2**20} MiB file)")
        return 0
    image = build_base_image(args.cache_dir, suite=args.suite, refresh=not args.offline)
    used = image.qcow2.stat().st_blocks * 512
    print(f"image    {image.qcow2}")
    print(f"kernel   {image.kernel}\ninitrd   {image.initrd}\ncmdline  {image.cmdline}")
    print(f"version  {image.version}  ({len(image.manifest)} packages, built {image.built_at})")
    print(f"size     {image.size // 2**20} MiB virtual, {used // 2**20} MiB qcow2")
    print(f"time     {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
