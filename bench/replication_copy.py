"""How fast does the gallery copy a sparse VHD into its regions, next to ``cp --sparse=always``?

Target (BENCHMARKS.md): copy_sparse (what replication uses) at >= 0.9x the rate of
``cp --sparse=always`` on the same file, measured in the same run. The benchmark builds a fixed
VHD (default 2 GiB apparent, ~480 MiB of random data in scattered extents, valid footer) in a
temporary directory, then:

1. copies it with ``cp --sparse=always`` (+ an fsync of the copy, as copy_sparse does) and with
   ``copy_sparse``, alternating, ``--reps`` times each; the page cache is NOT dropped unless
   ``--drop-caches`` is given (root only), so both read a warm source and both pay for writing
   the copy to disk;
2. replicates it through a local Azure (time factor 0) to ``--regions`` regions, timed from the
   version's PUT to Succeeded (polled every 50 ms), with every region's copy checked against the
   source's hash.

Rates are allocated MiB per second (the bytes that are really copied).

    python -m bench.replication_copy [--size-mib 2048 --allocated-mib 480 --reps 3 --regions 3 --json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "plugins"):  # the repository and the factory's hook, as pytest has them
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from emulator.storage import sparse, vhd  # noqa: E402

MIB = 1024 * 1024
TARGET = 0.9
LOCATION = "westeurope"
REGIONS = ["westeurope", "eastus", "japaneast", "westus2", "northeurope", "southeastasia"]


def build_vhd(path: Path, size_mib: int, allocated_mib: int, seed: int = 1) -> int:
    """A sparse fixed VHD with ``allocated_mib`` of random data in scattered 1-16 MiB extents; returns data bytes."""
    rng = random.Random(seed)
    size = size_mib * MIB
    vhd.write_fixed(path, size)
    slots = list(range(size_mib))  # 1 MiB slots; extents are runs of them, apart from each other
    left, written = allocated_mib, 0
    fd = os.open(path, os.O_WRONLY)
    try:
        taken: set[int] = set()
        while left > 0:
            length = min(left, rng.randint(1, 16))
            start = rng.choice(slots[: max(1, size_mib - length)])
            run = set(range(start - 1, start + length + 1))
            if run & taken:
                continue
            taken |= run
            os.pwrite(fd, os.urandom(length * MIB), start * MIB)
            left -= length
            written += length * MIB
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 * MIB):
            h.update(block)
    return h.hexdigest()


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def _settle(drop_caches: bool) -> None:
    """Between runs: nothing dirty left to write back (and, if asked, a cold page cache)."""
    os.sync()
    if drop_caches:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def time_cp(src: Path, dst: Path) -> tuple[float, float]:
    """(seconds for cp alone, seconds for cp + fsync of the copy)."""
    began = time.perf_counter()
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    copied = time.perf_counter() - began
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return copied, time.perf_counter() - began


def time_copy_sparse(src: Path, dst: Path) -> float:
    began = time.perf_counter()
    sparse.copy_sparse(src, dst)
    return time.perf_counter() - began


def compare(src: Path, work: Path, reps: int, drop_caches: bool) -> dict[str, Any]:
    """cp and copy_sparse on the same file, alternating; every copy checked for bytes and holes."""
    want, data = sha256(src), allocated(src)
    runs: dict[str, list[float]] = {"cp": [], "cp_fsync": [], "copy_sparse": []}
    for i in range(reps):
        for tool in ("cp", "copy_sparse") if i % 2 == 0 else ("copy_sparse", "cp"):
            dst = work / f"{tool}-{i}.vhd"
            _settle(drop_caches)
            if tool == "cp":
                alone, synced = time_cp(src, dst)
                runs["cp"].append(alone)
                runs["cp_fsync"].append(synced)
            else:
                runs["copy_sparse"].append(time_copy_sparse(src, dst))
            if sha256(dst) != want or allocated(dst) > data + 8 * MIB:
                raise RuntimeError(f"{tool} made a bad copy: {dst}")
            dst.unlink()
    return {k: {"runs_s": v, "median_s": statistics.median(v)} for k, v in runs.items()}


def replicate(src: Path, tmp: Path, regions: list[str]) -> dict[str, Any]:
    """Replicate ``src`` to ``regions`` through a local Azure at time factor 0; seconds from PUT to Succeeded."""
    from emulator.core.context import Context
    from emulator.storage import blobs
    from tests.localazure import LocalAzure

    emu = LocalAzure(tmp / "azure", time_factor=0.0).start()
    try:
        arm = _arm(emu)
        group, gallery = f"bench-{uuid.uuid4().hex[:6]}", f"gal{uuid.uuid4().hex[:6]}"
        arm.resources.resource_groups.create_or_update(group, {"location": LOCATION})
        arm.compute.galleries.begin_create_or_update(group, gallery, {"location": LOCATION}).result()
        arm.compute.gallery_images.begin_create_or_update(group, gallery, "img", {
            "location": LOCATION, "properties": {
                "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                "identifier": {"publisher": "bench", "offer": "debian", "sku": "12"}}}).result()
        # a sparse upload (as azcopy makes of a page blob): the file goes straight into the blob store
        blob = blobs.path_of(Context(store=None, state_dir=str(emu.state_dir)),  # type: ignore[arg-type]
                             "benchvhds", "vhds", src.name)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, blob)
        body = {"location": LOCATION, "properties": {
            "publishingProfile": {"targetRegions": [{"name": r} for r in regions]},
            "storageProfile": {"osDiskImage": {"source": {"uri": blobs.url_of("benchvhds", "vhds", src.name)}}}}}
        versions = arm.compute.gallery_image_versions
        _settle(False)
        began = time.perf_counter()
        versions.begin_create_or_update(group, gallery, "img", "1.0.0", body)
        while True:
            v = versions.get(group, gallery, "img", "1.0.0")
            if v.provisioning_state in ("Succeeded", "Failed"):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        if v.provisioning_state != "Succeeded":
            raise RuntimeError(f"replication failed: {v.provisioning_state}")
        want = sha256(src)
        copies = [p for r in regions for p in (emu.state_dir / "regions" / r / "gallery").rglob("*.vhd")]
        if len(copies) != len(regions) or any(sha256(p) != want for p in copies):
            raise RuntimeError("a region's copy is missing or differs from the source")
        return {"regions": regions, "seconds": seconds, "copies_allocated": [allocated(p) for p in copies],
                "emulator_pid": emu.proc.pid if emu.proc else None}
    finally:
        emu.stop()


def _arm(emu: Any) -> Any:
    from image_factory.hooks.arm import AzureResourceManagerHook

    conn_id = "bench_replication_copy"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = emu.connection_uri_env()
    return AzureResourceManagerHook(conn_id)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=2048, help="apparent size of the VHD's disk")
    p.add_argument("--allocated-mib", type=int, default=480, help="random data written in scattered extents")
    p.add_argument("--reps", type=int, default=3, help="copies per tool")
    p.add_argument("--regions", type=int, default=3, help="regions to replicate to through the local Azure (0: skip)")
    p.add_argument("--drop-caches", action="store_true", help="drop the page cache before every copy (root)")
    p.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary directory)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    if not 1 <= args.allocated_mib < args.size_mib <= 64 * 1024:
        p.error("need 1 <= --allocated-mib < --size-mib <= 65536")
    if not 1 <= args.reps <= 20 or not 0 <= args.regions <= len(REGIONS):
        p.error(f"need 1 <= --reps <= 20 and 0 <= --regions <= {len(REGIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    with tempfile.TemporaryDirectory(prefix="bench-copy-", dir=args.dir) as tmp:
        work = Path(tmp)
        src = work / "disk.vhd"
        began = time.perf_counter()
        data = build_vhd(src, args.size_mib, args.allocated_mib)
        built = time.perf_counter() - began
        alloc_mib = allocated(src) / MIB
        report: dict[str, Any] = {
            "vhd": {"apparent_mib": src.stat().st_size / MIB, "data_mib": data / MIB, "allocated_mib": alloc_mib,
                    "build_s": built},
            "page_cache": "dropped before each copy" if args.drop_caches else "warm (not dropped)",
        }
        report["copies"] = compare(src, work, args.reps, args.drop_caches)
        if args.regions:
            report["replication"] = replicate(src, work, REGIONS[: args.regions])
        _print(report, alloc_mib)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    return 0


def _print(report: dict[str, Any], alloc_mib: float) -> None:
    v, c = report["vhd"], report["copies"]
    print(f"VHD: {v['apparent_mib']:.0f} MiB apparent, {v['allocated_mib']:.0f} MiB allocated "
          f"(built in {v['build_s']:.1f} s); page cache {report['page_cache']}")
    rates = {}
    for tool, label in (("cp", "cp --sparse=always"), ("cp_fsync", "cp --sparse=always + fsync"),
                        ("copy_sparse", "copy_sparse (fsyncs)")):
        median = c[tool]["median_s"]
        rates[tool] = alloc_mib / median
        runs = " ".join(f"{s:.2f}" for s in c[tool]["runs_s"])
        print(f"{label:30s} median {median:6.2f} s  {rates[tool]:8.0f} MiB/s   runs: {runs}")
    ratio = rates["copy_sparse"] / rates["cp_fsync"]
    ratio_plain = rates["copy_sparse"] / rates["cp"]
    report["ratio"] = {"vs_cp_fsync": ratio, "vs_cp": ratio_plain, "target": TARGET}
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"copy_sparse/cp: {ratio:.2f}x vs cp+fsync ({verdict}, target >= {TARGET}x), {ratio_plain:.2f}x vs cp alone")
    r = report.get("replication")
    if r:
        n = len(r["regions"])
        print(f"replication to {n} regions through the local Azure: {r['seconds']:.2f} s from PUT to Succeeded, "
              f"{n * alloc_mib / r['seconds']:.0f} MiB/s over all regions "
              f"({alloc_mib / r['seconds'] * n / 2:.0f} MiB/s per copy slot)")


if __name__ == "__main__":
    sys.exit(main())
