"""How much faster is the VHD import's page-blob upload than sending every byte, and what does it send?

Target (BENCHMARKS.md): bytes sent proportional to allocated data, and >= 3x faster than a naive
full upload on a 2 GiB disk with ~0.5 GiB used. Measured in one run, against the Azurite of a local
Azure that the benchmark starts (``tests/localazure.py``), with a storage account made through ARM
by the factory's StorageHook, on a sparse fixed VHD (default 2 GiB, 512 MiB of random data in
scattered 1-16 MiB extents, valid footer) built in a temporary directory:

1. read: every byte of the file read in order, 4 MiB at a time (what ``cat`` costs; holes read as zeros);
2. engine: ``upload_vhd`` as the import DAG runs it (plan, parallel Put Page of the data with MD5,
   read-back verification), into a new blob;
3. naive: one thread, Put Page (with MD5, as the engine) of every 4 MiB of the file, zeros included,
   into another new blob, no verification.

With ``--reps N`` engine and naive alternate N times; the medians count. The page cache is warm
for all three (the file was just written and read). Everything is stopped by PID and deleted in a
``finally``.

    python -m bench.vhd_upload [--size-mib 2048 --data-mib 512 --threads 8 --reps 1 --json out.json]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
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

from bench.output import publish  # noqa: E402
from bench.replication_copy import build_vhd  # noqa: E402

MIB = 1024 * 1024
PUT_PAGE = 4 * MIB
TARGET_SPEEDUP = 3.0
LOCATION = "westeurope"
CONN_ID = "bench_vhd_upload"
DEFINITIONS = {
    "allocated": "bytes in the file's data extents (SEEK_DATA/SEEK_HOLE), the footer's block included",
    "read": "seconds to read every byte of the file in order, 4 MiB per read, and the file's size per second",
    "engine": "seconds of one upload_vhd call: plan (read data, SHA-256 of the file, zero detection), "
              "Put Page of the planned ranges in parallel with transactional MD5, read-back of the blob's "
              "valid pages compared with the file's digest, metadata update",
    "send": "the part of 'engine' from the first Put Page to the last answer; chunks whose pages are all "
            "written are read back meanwhile",
    "rest of read-back": "the part of 'engine' after the last Put Page: chunks still to read back, the page "
                         "range list, the digest comparison and the metadata update",
    "naive": "seconds to create the page blob and Put Page every 4 MiB of the file in order on one thread, "
             "with transactional MD5, zeros included",
    "bytes sent": "page data in Put Page bodies (headers not counted)",
    "speedup": "naive seconds / engine seconds (medians); the target is >= 3",
    "engine vs read": "engine seconds / read seconds: how many reads of the whole file the upload costs",
    "sent / allocated": "bytes sent / allocated bytes; at most 1 means only allocated data went out",
}


def read_all(path: Path) -> float:
    """Seconds to read every byte of ``path`` in order (``cat`` > /dev/null)."""
    began = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, PUT_PAGE):
            pass
    finally:
        os.close(fd)
    return time.perf_counter() - began


def naive_upload(path: Path, blob: Any) -> tuple[float, int]:
    """(seconds, bytes sent) for a page blob of every 4 MiB of ``path``, one after the other."""
    size = path.stat().st_size
    began = time.perf_counter()
    blob.create_page_blob(size)
    sent = 0
    with open(path, "rb") as fh:
        while data := fh.read(PUT_PAGE):
            blob.upload_page(data, offset=sent, length=len(data), validate_content=True)
            sent += len(data)
    return time.perf_counter() - began, sent


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from image_factory.disks.upload import upload_vhd
    from image_factory.hooks.storage import StorageHook
    from tests.localazure import LocalAzure

    src = work / "disk.vhd"
    began = time.perf_counter()
    data = build_vhd(src, args.size_mib, args.data_mib)
    report: dict[str, Any] = {
        "state": "failed", "threads": args.threads, "reps": args.reps,
        "vhd": {"size": src.stat().st_size, "data": data, "allocated": src.stat().st_blocks * 512,
                "build_s": time.perf_counter() - began},
    }
    read_all(src)  # warm: every phase reads from the page cache
    reads = [read_all(src) for _ in range(args.reps)]
    emu = LocalAzure(work / "azure", time_factor=0.0).start()
    report["emulator_pid"] = emu.proc.pid if emu.proc else None
    try:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = emu.connection_uri_env()
        hook = StorageHook(CONN_ID)
        group, account = f"bench-{uuid.uuid4().hex[:6]}", "bench" + uuid.uuid4().hex[:12]
        hook.resources.resource_groups.create_or_update(group, {"location": LOCATION})
        hook.ensure_account(group, account, location=LOCATION, tags={"purpose": "bench"})
        hook.ensure_container(group, account, "vhds")
        engine: list[dict[str, Any]] = []
        naive: list[tuple[float, int]] = []
        for i in range(args.reps):
            for kind in ("engine", "naive") if i % 2 == 0 else ("naive", "engine"):
                os.sync()  # nothing of the previous phase left to write back
                blob = hook.blob_client(group, account, "vhds", f"{kind}-{i}.vhd")
                if kind == "engine":
                    engine.append(upload_vhd(src, blob, threads=args.threads, progress=None).as_dict())
                else:
                    naive.append(naive_upload(src, blob))
                blob.delete_blob()
        report["read"] = {"runs_s": reads, "median_s": statistics.median(reads)}
        report["engine"] = {"runs": engine, "median_s": statistics.median(r["seconds"] for r in engine)}
        report["naive"] = {"runs_s": [s for s, _ in naive], "median_s": statistics.median(s for s, _ in naive),
                           "bytes_sent": naive[0][1]}
        report["state"] = "success"
    finally:
        emu.stop()
    return report


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    e, n, r, v = report["engine"], report["naive"], report["read"], report["vhd"]
    sent = e["runs"][0]["bytes_sent"]
    speedup = n["median_s"] / e["median_s"]
    return {
        "speedup": speedup,
        "engine_vs_read": e["median_s"] / r["median_s"], "sent_over_allocated": sent / v["allocated"],
        "naive_sent_over_allocated": n["bytes_sent"] / v["allocated"], "target": TARGET_SPEEDUP,
        "met": speedup >= TARGET_SPEEDUP and sent <= v["allocated"],
    }


def render(report: dict[str, Any]) -> str:
    v, e, n, r, q = report["vhd"], report["engine"], report["naive"], report["read"], report["ratios"]
    first = e["runs"][0]
    mib = v["size"] / MIB
    lines = [
        f"VHD: {mib:.0f} MiB, {v['data'] / MIB:.0f} MiB of random data, {v['allocated'] / MIB:.0f} MiB allocated; "
        f"{report['threads']} threads, {report['reps']} rep(s), medians; page cache warm",
        f"{'':22s}{'seconds':>9s} {'MiB/s of disk':>14s} {'MiB sent':>9s}",
        f"{'read (cat)':22s}{r['median_s']:9.2f} {mib / r['median_s']:14.0f} {'-':>9s}",
        f"{'engine (upload_vhd)':22s}{e['median_s']:9.2f} {mib / e['median_s']:14.0f} {first['bytes_sent'] / MIB:9.1f}",
        f"  first run: plan {first['plan_seconds']:.2f} s, send {first['send_seconds']:.2f} s (read-back "
        f"overlapped), rest of read-back {first['verify_seconds']:.2f} s; {first['ranges_sent']} ranges, "
        f"{first['ranges_skipped_zero']} zero stretches left out",
        f"{'naive (every 4 MiB)':22s}{n['median_s']:9.2f} {mib / n['median_s']:14.0f} {n['bytes_sent'] / MIB:9.1f}",
        f"engine vs naive: {q['speedup']:.2f}x faster ({'met' if q['met'] else 'NOT met'}, target >= "
        f"{q['target']:.0f}x)",
        f"engine vs read: {q['engine_vs_read']:.2f}x the time of reading the file once",
        f"bytes sent / allocated: engine {q['sent_over_allocated']:.3f}, naive {q['naive_sent_over_allocated']:.2f}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=2048, help="the disk's size (the VHD adds its 512-byte footer)")
    p.add_argument("--data-mib", type=int, default=512, help="random data written in scattered extents")
    p.add_argument("--threads", type=int, default=8, help="the engine's ranges in flight")
    p.add_argument("--reps", type=int, default=1, help="engine and naive runs, alternating")
    p.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary directory)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--definitions", action="store_true", help="print how every number is defined")
    args = p.parse_args(argv)
    if not 1 <= args.data_mib < args.size_mib <= 64 * 1024:
        p.error("need 1 <= --data-mib < --size-mib <= 65536")
    if not 1 <= args.threads <= 64 or not 1 <= args.reps <= 10:
        p.error("need 1 <= --threads <= 64 and 1 <= --reps <= 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    with tempfile.TemporaryDirectory(prefix="bench-vhd-upload-", dir=args.dir) as tmp:
        report = run(args, Path(tmp))
    report["ratios"] = ratios(report)
    return publish(report, render(report), DEFINITIONS, show_definitions=args.definitions, json_path=args.json)


if __name__ == "__main__":
    sys.exit(main())
