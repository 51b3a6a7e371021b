"""What a command in a simulated guest runs with: streams, the guest's hooks, faults, and signals.

Interpreters run in worker threads (never on the event loop) and reach the rest of the world
only through ``GuestHooks``, which the runtime implements: scaled waits that a dropped client
cancels, fault lookup, power actions. That keeps the interpreters pure and unit-testable with a
fake hooks object.
"""

from __future__ import annotations

import codecs
import contextlib
import fnmatch
import io
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class Cancelled(Exception):
    """The client went away or terminated the command: stop at once."""


class PowerOff(Exception):
    """The guest is shutting down: the shell dies with it and the connection drops."""


class Output(Protocol):
    def write(self, text: str) -> None: ...


class Buffer:
    def __init__(self) -> None:
        self._io = io.StringIO()

    def write(self, text: str) -> None:
        self._io.write(text)

    def getvalue(self) -> str:
        return self._io.getvalue()


class Null:
    def write(self, text: str) -> None:
        pass


class Input:
    """stdin of a command: ``read()`` all of it (blocking until EOF for a live stream)."""

    def read(self) -> str:
        return ""

    def readline(self) -> str:
        return ""


class TextInput(Input):
    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0

    def read(self) -> str:
        out, self._pos = self._text[self._pos:], len(self._text)
        return out

    def readline(self) -> str:
        end = self._text.find("\n", self._pos)
        end = len(self._text) if end < 0 else end + 1
        out, self._pos = self._text[self._pos:end], end
        return out


class StreamInput(Input):
    """stdin fed by a network channel from the event loop; readers block in their worker thread."""

    _EOF = object()

    def __init__(self, cancel: threading.Event) -> None:
        self._q: queue.Queue[Any] = queue.Queue()
        self._cancel = cancel
        self._buf = ""
        self._eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes | str) -> None:
        self._q.put(data)

    def close(self) -> None:
        self._q.put(self._EOF)

    def _pull(self) -> bool:
        while True:
            if self._cancel.is_set():
                raise Cancelled()
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is self._EOF:
                self._buf += self._decoder.decode(b"", final=True)
                self._eof = True
                return False
            self._buf += self._decoder.decode(item) if isinstance(item, bytes) else item
            return True

    def read(self) -> str:
        while not self._eof:
            self._pull()
        out, self._buf = self._buf, ""
        return out

    def readline(self) -> str:
        while "\n" not in self._buf and not self._eof:
            self._pull()
        end = self._buf.find("\n")
        end = len(self._buf) if end < 0 else end + 1
        out, self._buf = self._buf[:end], self._buf[end:]
        return out


@dataclass
class Fault:
    """An injected failure: commands matching ``match`` (a glob) fail with ``exit_code``/``stderr`` or hang."""

    match: str
    exit_code: int = 1
    stderr: str = ""
    hang: bool = False
    count: int | None = None  # how many more times it fires; None = until removed
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    def matches(self, command: str) -> bool:
        return fnmatch.fnmatchcase(command.strip(), self.match)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "match": self.match, "exit_code": self.exit_code, "stderr": self.stderr,
                "hang": self.hang, "count": self.count, "hits": self.hits}


class GuestHooks(Protocol):
    """What an interpreter may ask of the machine it runs in (implemented by the runtime's guest)."""

    lock: GuestLock

    def duration(self, azure_seconds: float) -> float: ...
    def take_fault(self, command: str) -> Fault | None: ...
    def power(self, action: str) -> None: ...  # "poweroff" | "reboot": scheduled, the caller then raises PowerOff
    def archive_serial(self) -> int: ...
    def changed(self) -> None: ...
    # set when fn has run; override: an emulator setting that, above 0, is the delay in wall-clock seconds instead
    def later(self, azure_seconds: float, fn: Callable[[], None], *,
              override: str | None = None) -> threading.Event: ...
    def log(self, message: str) -> None: ...


class GuestLock:
    """The machine's re-entrant lock; a waiting command lets go of it entirely (``released``).

    Commands change the guest's state holding it; a command that sleeps, hangs or waits for
    sysprep must not hold it, or the machine would freeze (sysprep could never finish while a
    script polls ImageState).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()

    def _depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    def acquire(self) -> None:
        self._lock.acquire()
        self._local.depth = self._depth() + 1

    def release(self) -> None:
        self._local.depth = self._depth() - 1
        self._lock.release()

    def __enter__(self) -> GuestLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        depth = self._depth()
        for _ in range(depth):
            self._lock.release()
        self._local.depth = 0
        try:
            yield
        finally:
            for _ in range(depth):
                self._lock.acquire()
            self._local.depth = depth


def wait(seconds: float, cancel: threading.Event, lock: GuestLock | None = None) -> None:
    """Sleep ``seconds`` of real time (not holding ``lock``), or raise Cancelled as soon as the command is cancelled."""
    if seconds <= 0:
        if cancel.is_set():
            raise Cancelled()
        return
    with lock.released() if lock is not None else contextlib.nullcontext():
        if cancel.wait(seconds):
            raise Cancelled()


def hang(cancel: threading.Event, lock: GuestLock | None = None) -> None:
    """Never answer, until cancelled (the client disconnects or signals the command)."""
    with lock.released() if lock is not None else contextlib.nullcontext():
        while not cancel.wait(3600):
            pass
    raise Cancelled()


class FakeHooks:
    """GuestHooks for unit tests and tools: instant time, recorded power actions, optional faults."""

    def __init__(self, serial: int = 12, faults: list[Fault] | None = None) -> None:
        self.lock = GuestLock()
        self.serial = serial
        self.faults = faults or []
        self.actions: list[str] = []
        self.messages: list[str] = []
        self.changes = 0

    def duration(self, azure_seconds: float) -> float:
        return 0.0

    def take_fault(self, command: str) -> Fault | None:
        for f in self.faults:
            if f.matches(command) and (f.count is None or f.count > 0):
                f.hits += 1
                if f.count is not None:
                    f.count -= 1
                return f
        return None

    def power(self, action: str) -> None:
        self.actions.append(action)

    def archive_serial(self) -> int:
        return self.serial

    def changed(self) -> None:
        self.changes += 1

    def later(self, azure_seconds: float, fn: Callable[[], None], *,
              override: str | None = None) -> threading.Event:
        """Instant time: run it now (tests step state machines explicitly)."""
        done = threading.Event()
        fn()
        done.set()
        return done

    def log(self, message: str) -> None:
        self.messages.append(message)


def monotonic() -> float:
    return time.monotonic()
