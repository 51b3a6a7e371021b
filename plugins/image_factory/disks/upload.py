"""Send a fixed VHD to an Azure page blob: only its data, in parallel, resumable, verified end to end.

What Add-AzVhd and azcopy do for a disk import, for a ``BlobClient`` on real Azure or Azurite. The
plan (upload_plan.py) lists the pages that hold data; each goes up as one Put Page with its MD5.
The blob is created with metadata naming its source (the file's size and content digest), so a
killed upload leaves a blob that a rerun recognises: it lists the pages already there and sends
only the rest. Anything else under that name is refused before a byte is sent, unless the caller
asks to overwrite.

Verification reads the blob back: each 4 MiB chunk as soon as all its pages are acknowledged (so
reading overlaps sending), then the blob's valid page ranges decide which chunks count, and any
chunk with valid pages outside what was read early is read again. The digest of what came back
must equal the file's; it goes into the metadata, with the file's plain SHA-256 (hashed on a thread
of its own meanwhile), and a rerun on a verified blob sends nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from image_factory.disks.upload_plan import (
    CHUNK,
    DIGEST_ALGORITHM,
    MIB,
    ContentDigest,
    Span,
    UploadPlan,
    VhdFileError,
    chunk_bounds,
    chunks_of,
    file_sha256,
    merge,
    missing,
    plan_upload,
)
from image_factory.errors import PermanentError

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobProperties

log = logging.getLogger(__name__)

TOOL = "image-factory-vhd-upload-1"
META_TOOL = "imagefactory_tool"
META_ALGORITHM = "imagefactory_digest_algorithm"
META_SOURCE_DIGEST = "imagefactory_source_digest"  # the file's content digest (DIGEST_ALGORITHM)
META_SOURCE_SIZE = "imagefactory_source_size"
META_SOURCE_SHA256 = "imagefactory_source_sha256"  # the file's plain SHA-256, once verified
META_VERIFIED = "imagefactory_verified_digest"  # the blob's content digest as read back, once it matched
DEFAULT_THREADS = 8
MAX_THREADS = 64
PROGRESS_EVERY = 5.0  # seconds between progress reports


class BlobConflictError(PermanentError):
    """The blob exists and is not a copy (finished or partial) of this file: resuming would mix two disks."""


class UploadVerificationError(PermanentError):
    """The blob's content read back differs from the file's."""


@dataclass(frozen=True)
class UploadProgress:
    ranges_done: int
    ranges_total: int  # to send in this run
    bytes_sent: int
    bytes_total: int  # to send in this run
    seconds: float  # since the sending began

    @property
    def mib_per_s(self) -> float:
        return self.bytes_sent / MIB / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{self.ranges_done}/{self.ranges_total} ranges, {self.bytes_sent / MIB:.1f}/"
                f"{self.bytes_total / MIB:.1f} MiB sent in {self.seconds:.1f} s ({self.mib_per_s:.1f} MiB/s)")


Progress = Callable[[UploadProgress], None]


def log_progress(p: UploadProgress) -> None:
    log.info("VHD upload: %s", p)


@dataclass(frozen=True)
class UploadResult:
    """What one call did; ``bytes_sent`` counts page data only (no headers), ``seconds`` the whole call."""

    blob_url: str
    size: int  # bytes of the file (and of the blob)
    allocated: int  # bytes of the file's data extents
    bytes_sent: int
    ranges_planned: int  # ranges holding data
    ranges_sent: int
    ranges_skipped_zero: int  # all-zero stretches of allocated data that were not sent
    ranges_present: int  # planned ranges already in the blob (a resumed or finished upload)
    sha256: str  # of the file, as sha256sum prints it
    digest: str  # content digest of file and blob (DIGEST_ALGORITHM)
    read_back: bool  # this call read the blob back (False: its metadata already said it was verified)
    plan_seconds: float
    send_seconds: float  # from the first Put Page to the last answer
    verify_seconds: float  # after the last answer: the rest of the read-back and the metadata
    seconds: float

    @property
    def throughput_mib_s(self) -> float:
        """Page data sent per second of the whole call."""
        return self.bytes_sent / MIB / self.seconds if self.seconds > 0 else 0.0

    @property
    def disk_mib_s(self) -> float:
        """The disk's size per second of the whole call: how fast a disk of this size got into Azure."""
        return self.size / MIB / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for a task's log or XCom), the rates included."""
        return {**asdict(self), "throughput_mib_s": round(self.throughput_mib_s, 1),
                "disk_mib_s": round(self.disk_mib_s, 1)}


def source_metadata(plan: UploadPlan) -> dict[str, str]:
    """The blob metadata that ties a blob to the file it is a copy of."""
    return {META_TOOL: TOOL, META_ALGORITHM: DIGEST_ALGORITHM, META_SOURCE_DIGEST: plan.digest,
            META_SOURCE_SIZE: str(plan.size)}


def upload_vhd(path: str | os.PathLike[str], blob: BlobClient, *, threads: int = DEFAULT_THREADS,
               overwrite: bool = False, labels: Mapping[str, str] | None = None,
               progress: Progress | None = log_progress, progress_every: float = PROGRESS_EVERY) -> UploadResult:
    """Make ``blob`` a verified page-blob copy of the fixed VHD at ``path``, sending only what it lacks.

    ``threads``: ranges in flight at once (and as many chunks read back). ``overwrite``: a blob
    under that name that is not a verified copy of this file is replaced (started anew) instead of
    refused. ``labels``: more metadata (the run's, for the sweeper), set before any byte is sent and
    brought up to date on a blob this call resumes or finds verified. ``progress`` is called at
    most every ``progress_every`` seconds (0: after every range) and once when the sending ends; an
    exception it raises stops the upload like any other failure: ranges in flight finish, the rest
    are not sent, and a rerun resumes.
    """
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads: must be between 1 and {MAX_THREADS} ranges at a time, got {threads}")
    if progress_every < 0:
        raise ValueError(f"progress_every: must be 0 or more seconds, got {progress_every}")
    began = time.monotonic()
    plan = plan_upload(path)
    planned = time.monotonic()
    wanted = {**source_metadata(plan), **(labels or {})}
    existing = _properties(blob)
    conflict = None if existing is None else _conflict(existing, plan)
    if existing is not None and conflict is None:
        _relabel(blob, existing, labels or {})
    if existing is not None and conflict is None and existing.metadata.get(META_VERIFIED) == plan.digest:
        sha256 = existing.metadata.get(META_SOURCE_SHA256) or file_sha256(path)
        now = time.monotonic()
        return _result(plan, blob, sha256, 0, 0, False, began, planned, now, now)
    if existing is not None and conflict is not None and not overwrite:
        raise BlobConflictError(
            f"Blob {blob.url} exists with other content ({conflict}): an upload only resumes a blob it started "
            f"from the same file (same size and {DIGEST_ALGORITHM} digest in its metadata). Delete the blob, "
            "choose another name, or ask to overwrite it."
        )
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vhd-sha256") as hasher, \
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vhd-verify") as readers:
        hashing = hasher.submit(file_sha256, path, stop=stop)
        readback = _ReadBack(blob, plan.size, readers)
        try:
            if existing is None or overwrite:
                from azure.storage.blob import ContentSettings

                blob.create_page_blob(plan.size, metadata=wanted,
                                      content_settings=ContentSettings(content_type="application/octet-stream"))
                todo = list(plan.ranges)
            else:
                todo = missing(plan.ranges, page_ranges(blob))
            sent = _send(plan, blob, todo, threads, progress, progress_every, readback)
            sent_at = time.monotonic()
            digest = readback.digest(page_ranges(blob))
            if digest != plan.digest:
                raise UploadVerificationError(
                    f"Blob {blob.url}: its content read back ({DIGEST_ALGORITHM} {digest}) differs from "
                    f"{plan.path}'s ({plan.digest}); upload it again with overwrite to start anew."
                )
        except BaseException:  # no more reads start, reads in flight finish, the hash stops soon
            stop.set()
            readers.shutdown(wait=False, cancel_futures=True)
            raise
        blob.set_blob_metadata({**wanted, META_SOURCE_SHA256: hashing.result(), META_VERIFIED: digest})
    return _result(plan, blob, hashing.result(), sent, len(todo), True, began, planned, sent_at, time.monotonic())


def _result(plan: UploadPlan, blob: BlobClient, sha256: str, sent: int, ranges_sent: int, read_back: bool,
            began: float, planned: float, sent_at: float, verified_at: float) -> UploadResult:
    return UploadResult(
        blob_url=blob.url, size=plan.size, allocated=plan.allocated, bytes_sent=sent,
        ranges_planned=len(plan.ranges), ranges_sent=ranges_sent, ranges_skipped_zero=plan.zero_spans,
        ranges_present=len(plan.ranges) - ranges_sent, sha256=sha256, digest=plan.digest, read_back=read_back,
        plan_seconds=planned - began, send_seconds=sent_at - planned, verify_seconds=verified_at - sent_at,
        seconds=time.monotonic() - began,
    )


def _properties(blob: BlobClient) -> BlobProperties | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError:
        return None


def _relabel(blob: BlobClient, existing: BlobProperties, labels: Mapping[str, str]) -> None:
    """Give a blob this upload takes up the caller's labels (a new run resuming a dead run's blob owns it now)."""
    meta = dict(existing.metadata or {})
    if any(meta.get(k) != v for k, v in labels.items()):
        meta.update(labels)
        blob.set_blob_metadata(meta)
        existing.metadata = meta


def _conflict(existing: BlobProperties, plan: UploadPlan) -> str | None:
    """Why an existing blob is not a copy of this file, or None when it is one (finished or not)."""
    kind = str(getattr(existing.blob_type, "value", existing.blob_type))
    if kind != "PageBlob":
        return f"a {kind}, not a page blob"
    meta = existing.metadata or {}
    if meta.get(META_TOOL) != TOOL or META_SOURCE_DIGEST not in meta:
        return "it was not made by this upload: no image-factory source metadata"
    if existing.size != plan.size or meta.get(META_SOURCE_SIZE) != str(plan.size):
        return f"{existing.size} bytes, the file has {plan.size}"
    if meta.get(META_ALGORITHM) != DIGEST_ALGORITHM or meta[META_SOURCE_DIGEST] != plan.digest:
        return f"a copy of a file with digest {meta[META_SOURCE_DIGEST]}, this one's is {plan.digest}"
    return None


class _Sent:
    """Ranges and bytes done, and each chunk's ranges still in flight, shared by the sending threads."""

    def __init__(self, todo: list[Span], size: int) -> None:
        self.lock = threading.Lock()
        self.ranges = 0
        self.bytes = 0
        self.left = {index: len(parts) for index, parts in chunks_of(todo, size).items()}

    def add(self, span: Span) -> bool:
        """Count one range done; True when it was its chunk's last."""
        index = span[0] // CHUNK
        with self.lock:
            self.ranges += 1
            self.bytes += span[1] - span[0]
            self.left[index] -= 1
            return self.left[index] == 0


def _send(plan: UploadPlan, blob: BlobClient, todo: list[Span], threads: int, progress: Progress | None,
          progress_every: float, readback: _ReadBack) -> int:
    """Put Page every range in ``todo``, ``threads`` at a time, and start reading back each chunk whose
    ranges have all been written (over all of the plan's ranges in it); the bytes sent."""
    sent = _Sent(todo, plan.size)
    windows = {index: (parts[0][0], parts[-1][1]) for index, parts in chunks_of(plan.ranges, plan.size).items()}
    total = sum(end - start for start, end in todo)
    fd = os.open(plan.path, os.O_RDONLY)
    began = time.monotonic()

    def put(span: Span) -> None:
        start, end = span
        data = os.pread(fd, end - start, start)
        if len(data) != end - start:
            raise VhdFileError(f"{plan.path}: the file shrank during the upload (at byte {start})")
        blob.upload_page(data, offset=start, length=end - start, validate_content=True)
        if sent.add(span):
            readback.start(start // CHUNK, *windows[start // CHUNK])

    def report() -> None:
        if progress is not None:
            progress(UploadProgress(sent.ranges, len(todo), sent.bytes, total, time.monotonic() - began))

    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vhd-upload") as pool:
            pending: set[Future[None]] = {pool.submit(put, span) for span in todo}
            try:
                last = began
                while pending:
                    timeout = progress_every if progress is not None and progress_every > 0 else None
                    done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # the first failure stops the upload
                    if time.monotonic() - last >= progress_every and pending:
                        report()
                        last = time.monotonic()
            finally:  # nothing new starts; ranges in flight finish (the pool waits for them)
                for future in pending:
                    future.cancel()
        report()
    finally:
        os.close(fd)
    return sent.bytes


class _ReadBack:
    """Chunks of the blob read back and hashed on the readers' threads; the digest from them at the end."""

    def __init__(self, blob: BlobClient, size: int, readers: ThreadPoolExecutor) -> None:
        self.blob, self.size, self.readers = blob, size, readers
        self.early: dict[int, tuple[Span, Future[bytes | None]]] = {}

    def start(self, index: int, first: int, last: int) -> None:
        """Read bytes [first, last) of chunk ``index`` now (its pages there are all written)."""
        self.early[index] = ((first, last), self.readers.submit(self._chunk_hash, index, first, last))

    def digest(self, valid: list[Span]) -> str:
        """The blob's content digest, given its valid page ranges: early reads that cover a chunk's valid
        pages count, every other chunk with valid pages is read now."""
        hashes: dict[int, Future[bytes | None]] = {}
        for index, parts in chunks_of(valid, self.size).items():
            first, last = parts[0][0], parts[-1][1]
            window, future = self.early.get(index, ((0, 0), None))
            if future is not None and window[0] <= first and last <= window[1]:
                hashes[index] = future
            else:
                hashes[index] = self.readers.submit(self._chunk_hash, index, first, last)
        digest = ContentDigest(self.size)
        for index in sorted(hashes):
            digest.add_hash(index, hashes[index].result())
        return digest.hexdigest()

    def _chunk_hash(self, index: int, first: int, last: int) -> bytes | None:
        lo, hi = chunk_bounds(index, self.size)
        data = self.blob.download_blob(offset=first, length=last - first).readall()
        if len(data) != last - first:
            raise UploadVerificationError(f"Blob {self.blob.url}: read {len(data)} bytes at {first}, "
                                          f"asked for {last - first}")
        buf = bytearray(hi - lo)
        buf[first - lo : last - lo] = data
        return ContentDigest.chunk_hash(buf)


def page_ranges(blob: BlobClient) -> list[Span]:
    """The blob's valid pages as sorted [start, end) spans."""
    return merge((r.start or 0, (r.end or 0) + 1) for r in blob.list_page_ranges() if not r.cleared)


def blob_digest(blob: BlobClient, size: int, *, threads: int = DEFAULT_THREADS) -> str:
    """The blob's content digest (DIGEST_ALGORITHM), downloading only the chunks that hold valid pages."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vhd-verify") as readers:
        return _ReadBack(blob, size, readers).digest(page_ranges(blob))
