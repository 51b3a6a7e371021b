"""Background copies of replica files: one worker thread per region, at most ``SLOTS`` copies at once.

The copier knows files, not ARM: each job carries callbacks (progress, end) through which the
replication code records what happened. A job can be cancelled (its version or region went
away) or made to fail part way (an injected regional fault); either way no partial file stays.
Stopping the copier (emulator shutdown) cancels running copies without reporting them, so they
are still unfinished in the store and start again when the emulator does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator.core.context import Context
from emulator.storage import sparse

log = logging.getLogger("emulator.gallery.copier")

SLOTS = 2  # concurrent copies: the disk, not the CPU, is the limit
REPORT_EVERY = 0.2  # seconds between progress reports (each is a store write)
EXTRA = "gallery.copier"
MIB = 1024 * 1024

OnProgress = Callable[[int, int], None]
OnEnd = Callable[[str, int, int, str | None], None]  # outcome ("done" | "failed"), done, total, error text


class Cancelled(Exception):
    """The copy is no longer wanted (or the emulator is stopping)."""


class Injected(Exception):
    """An injected regional fault stops the copy part way."""


@dataclass
class Job:
    region: str
    src: Path
    dst: Path
    on_progress: OnProgress
    on_end: OnEnd
    fail_at: float | None = None  # fraction of the bytes after which an injected fault stops the copy
    cancel: threading.Event = field(default_factory=threading.Event)


class Copier:
    def __init__(self, rate: Callable[[], float]) -> None:
        self._rate = rate  # MiB/s cap read at each job's start; 0 means as fast as the disk goes
        self._slots = threading.Semaphore(SLOTS)
        self._queues: dict[str, queue.Queue[Job | None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._stopping.is_set():
                return  # shutting down: the store still says unfinished, the next start copies it
            self._jobs[str(job.dst)] = job
            q = self._queues.get(job.region)
            if q is None:
                q = self._queues[job.region] = queue.Queue()
                t = threading.Thread(target=self._work, args=(q,), name=f"gallery-copy-{job.region}", daemon=True)
                self._threads[job.region] = t
                t.start()
        q.put(job)

    def cancel(self, dst: str | Path) -> bool:
        """Stop the copy writing ``dst`` (if any); it removes its partial file itself."""
        with self._lock:
            job = self._jobs.get(str(dst))
        if job is None:
            return False
        job.cancel.set()
        return True

    def busy(self) -> int:
        with self._lock:
            return len(self._jobs)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping.set()
            for job in self._jobs.values():
                job.cancel.set()
            threads = list(self._threads.values())
            for q in self._queues.values():
                q.put(None)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self, q: queue.Queue[Job | None]) -> None:
        while (job := q.get()) is not None:
            try:
                if not job.cancel.is_set():
                    with self._slots:
                        self._run(job)
            except Exception:  # a worker must outlive any one job
                log.exception("copying %s to %s failed unexpectedly", job.src, job.dst)
            finally:
                with self._lock:
                    if self._jobs.get(str(job.dst)) is job:
                        del self._jobs[str(job.dst)]

    def _run(self, job: Job) -> None:
        rate = max(0.0, float(self._rate() or 0.0))
        began = time.monotonic()
        last = [0.0, 0, 0]  # time of the last report, done, total

        def progress(done: int, total: int) -> None:
            last[1:] = [done, total]
            if job.cancel.is_set():
                raise Cancelled
            if job.fail_at is not None and done >= job.fail_at * total:
                raise Injected
            if rate:
                _pace(job.cancel, began + done / (rate * MIB))
            now = time.monotonic()
            if now - last[0] >= REPORT_EVERY:
                last[0] = now
                job.on_progress(done, total)

        try:
            stats = sparse.copy_sparse(job.src, job.dst, progress=progress, chunk=MIB if rate else sparse.CHUNK)
        except Cancelled:
            return
        except Injected:
            job.on_end("failed", int(last[1]), int(last[2]), None)
            return
        except OSError as exc:
            if not job.cancel.is_set():
                job.on_end("failed", int(last[1]), int(last[2]), f"{type(exc).__name__}: {exc}")
            return
        if job.cancel.is_set():  # cancelled between the last chunk and the rename
            job.dst.unlink(missing_ok=True)
            return
        job.on_end("done", stats.allocated, stats.allocated, None)


def _pace(cancel: threading.Event, until: float) -> None:
    """Sleep until ``until`` (a throttled copy), waking early to notice a cancellation."""
    while (left := until - time.monotonic()) > 0:
        if cancel.wait(min(left, 0.1)):
            raise Cancelled


def of(ctx: Context) -> Copier:
    """The context's copier, created on first use."""
    found = ctx.extras.get(EXTRA)
    if not isinstance(found, Copier):
        found = ctx.extras[EXTRA] = Copier(lambda: float(ctx.store.get_setting("copy_rate_mb_s", 0) or 0))
    return found


def cancel(ctx: Context, dst: str | Path) -> bool:
    found = ctx.extras.get(EXTRA)
    return isinstance(found, Copier) and found.cancel(dst)
