"""Azurite as a child process of the local Azure: started on first need, stopped with the emulator.

The ARM control plane (emulator/services/storage) owns storage accounts; Azurite serves their blob
data on ``http://127.0.0.1:<port>/<account>/...`` (its path-style URLs). Accounts reach Azurite
through a registry file, ``<state>/azurite/accounts`` (``name:key1:key2;...``), which launch.js makes
Azurite re-read whenever it changes, so a new account or key works with no restart.

Azurite listens on a port the kernel picks (``--blobPort 0``), read back from its start-up line in
``<state>/azurite/azurite.log``: no race with other local Azures on the machine. Its PID is kept in
``<state>/azurite/pid`` so an Azurite left behind by an emulator that was killed is stopped when the
next one starts on the same state directory.

With ``LOCAL_AZURE_AZURITE_URL`` set (docker-compose.yaml's ``azurite`` service) the emulator starts
no Azurite: it uses the one at that URL, which must run launch.js on the same accounts file (a shared
volume), and it never stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emulator.core.context import Context
from emulator.core.errors import ArmError

log = logging.getLogger("emulator.azurite")

PACKAGE_DIR = Path(__file__).resolve().parent
LAUNCHER = PACKAGE_DIR / "launch.js"
BLOB_MAIN = PACKAGE_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
HOST = "127.0.0.1"
EXTRA = "azurite"
START_TIMEOUT = 30.0
EXTERNAL_URL_ENV = "LOCAL_AZURE_AZURITE_URL"
_LISTENING = re.compile(rb"Azurite Blob service successfully listens on https?://[^:\s]+:(\d+)")
_lock = threading.Lock()


class AzuriteUnavailable(ArmError):
    """Azurite is missing or would not start: a broken installation, not the caller's mistake."""

    status, code = 500, "StorageEmulatorUnavailable"


@dataclass
class Azurite:
    """A running Azurite blob service."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class ExternalAzurite:
    """An Azurite another process runs (a compose service): used, never started or stopped here."""

    url: str
    pid: None = None

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 80

    def alive(self) -> bool:
        return True


def external_url() -> str | None:
    """The Azurite URL the environment names, without a trailing slash (AzuriteUnavailable if malformed)."""
    raw = os.environ.get(EXTERNAL_URL_ENV, "").strip()
    if not raw:
        return None
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme != "http" or not parts.hostname or parts.path.strip("/") or parts.query:
        raise AzuriteUnavailable(f"{EXTERNAL_URL_ENV} must be http://<host>:<port> (Azurite's blob service), "
                                 f"got {raw!r}")
    return raw.rstrip("/")


def home(ctx: Context) -> Path:
    return Path(ctx.state_dir) / "azurite"


def accounts_file(ctx: Context) -> Path:
    return home(ctx) / "accounts"


def log_file(ctx: Context) -> Path:
    return home(ctx) / "azurite.log"


def write_accounts(ctx: Context, accounts: list[tuple[str, str, str]]) -> None:
    """Replace the registry with ``(name, key1, key2)`` entries, atomically (Azurite may be reading it)."""
    target = accounts_file(ctx)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".accounts.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(";".join(f"{name}:{key1}:{key2}" for name, key1, key2 in accounts))
    os.chmod(tmp, 0o600)  # account keys
    os.replace(tmp, target)


def current(ctx: Context) -> Azurite | ExternalAzurite | None:
    """The Azurite this emulator uses, if it is up (an external one counts as up once it answered)."""
    found = ctx.extras.get(EXTRA)
    return found if isinstance(found, Azurite | ExternalAzurite) and found.alive() else None


def ensure(ctx: Context) -> Azurite | ExternalAzurite:
    """The Azurite to use: the external one if configured and answering, else ours, started now if it is not
    (AzuriteUnavailable when it cannot be)."""
    with _lock:
        running = current(ctx)
        if running is not None:
            return running
        url = external_url()
        if url is not None:
            if not accounts_file(ctx).exists():
                write_accounts(ctx, [])
            if not _answers(url):
                raise AzuriteUnavailable(f"Azurite at {url} ({EXTERNAL_URL_ENV}) does not answer")
            found: Azurite | ExternalAzurite = ExternalAzurite(url)
        else:
            found = _start(ctx)
        ctx.extras[EXTRA] = found
        return found


def stop(ctx: Context, timeout: float = 10.0) -> None:
    """Stop the Azurite this emulator started, by its PID (SIGTERM, then SIGKILL)."""
    with _lock:
        found = ctx.extras.pop(EXTRA, None)
        if isinstance(found, Azurite) and found.alive():
            found.proc.terminate()
            try:
                found.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                found.proc.kill()
                found.proc.wait(timeout)
        (home(ctx) / "pid").unlink(missing_ok=True)


def _start(ctx: Context) -> Azurite:
    node = shutil.which("node")
    if node is None or not BLOB_MAIN.is_file():
        missing = "Node.js ('node')" if node is None else f"Azurite ({BLOB_MAIN.relative_to(PACKAGE_DIR.parents[2])})"
        raise AzuriteUnavailable(
            f"The local Azure serves storage accounts with Azurite, but {missing} is not installed: "
            "run ./factory install."
        )
    folder = home(ctx)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    _stop_leftover(folder / "pid")
    if not accounts_file(ctx).exists():
        write_accounts(ctx, [])
    logfile = log_file(ctx)
    with open(logfile, "ab") as out:
        offset = out.tell()
        proc = subprocess.Popen(
            [node, str(LAUNCHER), "--blobHost", HOST, "--blobPort", "0", "--location", str(data),
             "--skipApiVersionCheck", "--disableTelemetry"],
            cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "LOCAL_AZURE_ACCOUNTS_FILE": str(accounts_file(ctx))},
        )
    (folder / "pid").write_text(str(proc.pid))
    try:
        port = _wait_listening(proc, logfile, offset)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        (folder / "pid").unlink(missing_ok=True)
        raise
    log.info("Azurite (pid %d) serves blobs on http://%s:%d", proc.pid, HOST, port)
    return Azurite(proc=proc, port=port)


def _wait_listening(proc: subprocess.Popen[bytes], logfile: Path, offset: int) -> int:
    """The port Azurite listens on, once it answers HTTP."""
    deadline = time.monotonic() + START_TIMEOUT
    port: int | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AzuriteUnavailable(f"Azurite exited with code {proc.returncode} while starting: {_tail(logfile, offset)}")
        if port is None:
            with open(logfile, "rb") as fh:
                fh.seek(offset)
                found = _LISTENING.search(fh.read())
            port = int(found.group(1)) if found else None
        if port is not None and _answers(f"http://{HOST}:{port}"):
            return port
        time.sleep(0.05)
    raise AzuriteUnavailable(f"Azurite did not answer within {START_TIMEOUT:.0f} s: {_tail(logfile, offset)}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (Azurite rejects the anonymous request) means it is serving
    except OSError:
        return False


def _tail(logfile: Path, offset: int) -> str:
    with open(logfile, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")[-1500:].strip() or "(no output)"


def _stop_leftover(pidfile: Path) -> None:
    """Stop the Azurite a killed emulator left running on this state directory (its PID file names it)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if str(LAUNCHER).encode() in cmdline:  # the PID may have been reused by an unrelated process
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
