"""The simulated guest runtime: in-process Linux and Windows machines behind VM resources.

``SimulatedRuntime`` implements ``emulator.guests.base.GuestRuntime``. Each VM becomes a ``Guest``:
a copy of its boot disk (copy-on-write: the source descriptor is never changed), a state
(starting, running, stopping, stopped, failed), and network listeners on the VM's public
loopback address (sshd on ``LOCAL_AZURE_SSH_PORT``, default 22; WinRM on 5985/5986). Boot and
shutdown take Azure's durations scaled by the time factor, then report through ``GuestEvents``
(looked up at firing time from ``ctx.extras["guest_events"]`` unless given). Every command is
recorded; faults make matching commands fail or hang. Each guest's state is persisted in the
store's settings (``guest:<vm id>``) so an emulator restart brings running guests back.

Threads: listeners run on the emulator's event loop (``ctx.extras["loop"]``, or a private loop
when there is none); commands run in worker threads; store writes happen in one persister
thread; events fire from worker threads. The loop thread never touches the store.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import copy
import datetime
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from emulator.core.context import Context
from emulator.guests.base import GuestEvents, GuestRuntime, GuestSpec, RunResult
from emulator.guests.imported import boot_failure
from emulator.guests.simulated import catalog, disk
from emulator.guests.simulated.linux import LinuxSystem, Provisioning
from emulator.guests.simulated.session import (
    Buffer,
    Cancelled,
    Fault,
    GuestLock,
    Input,
    Output,
    PowerOff,
    TextInput,
    hang,
)
from emulator.guests.simulated.windows import (
    GENERALIZED,
    WindowsProvisioning,
    WindowsSystem,
)

log = logging.getLogger("emulator.guests.simulated")

STARTING, RUNNING, STOPPING, STOPPED, FAILED = "starting", "running", "stopping", "stopped", "failed"
BOOT_SECONDS = {"Linux": 45.0, "Windows": 90.0}  # Azure: VM start to SSH / WinRM answering
SHUTDOWN_SECONDS = {"Linux": 3.0, "Windows": 10.0}
REBOOT_SECONDS = {"Linux": 30.0, "Windows": 60.0}
PROVISION_TIMEOUT = 20 * 60.0  # Azure gives OS provisioning 20 minutes before OSProvisioningTimedOut
WINDOWS_POWER_GRACE = 1.5  # real seconds a WinRM client gets to collect the result of "shutdown /s"
MAX_COMMANDS = 1000
SETTING = "guest:"
INDEX = "guest:index"
ARCHIVE = "guest:archive"


class GuestNotRunning(RuntimeError):
    """The VM's guest is not running (or unreachable), so it cannot run a command."""


def default_ssh_port() -> int:
    return int(os.environ.get("LOCAL_AZURE_SSH_PORT", "22"))


def default_winrm_ports() -> tuple[int, int]:
    return (int(os.environ.get("LOCAL_AZURE_WINRM_PORT", "5985")),
            int(os.environ.get("LOCAL_AZURE_WINRMS_PORT", "5986")))


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Guest:
    """One simulated machine; also the ``GuestHooks`` its interpreters run against."""

    def __init__(self, runtime: SimulatedRuntime, vm_id: str, os_type: str, os_state: dict[str, Any], *,
                 address: str, provisioned: bool) -> None:
        self.runtime = runtime
        self.vm_id = vm_id
        self.name = vm_id.rstrip("/").rsplit("/", 1)[-1]
        self.os_type = os_type
        self.os = os_state
        self.address = address
        self.system: Any = LinuxSystem(os_state) if os_type == "Linux" else WindowsSystem(os_state)
        self.state = STOPPED
        self.lock = GuestLock()
        self.provisioned = provisioned
        self.oobe_stuck = False
        self.destroyed = False
        self.generation = 0
        self.pending_spec: GuestSpec | None = None  # osProfile for the first boot (holds the password, memory only)
        self.computer_name_hint: str | None = None
        self.admin_username: str | None = None
        self.boots = 0
        self.announce = False  # fire booted when a silent (re)start completes: recover() asked for it
        self.commands: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_COMMANDS)
        self._seq = itertools.count(1)
        self.faults: list[Fault] = []
        self._meta_lock = threading.Lock()
        self._local = threading.local()  # the fault that fired for the command this thread runs
        self.connections: set[Any] = set()
        self.active: set[threading.Event] = set()
        self.sshd: Any = None
        self.winrm: Any = None
        self.open_shells = 0

    # GuestHooks -------------------------------------------------------------------------------
    def duration(self, azure_seconds: float) -> float:
        return self.runtime.duration(azure_seconds)

    def take_fault(self, command: str) -> Fault | None:
        with self._meta_lock:
            for f in self.faults:
                if (f.count is None or f.count > 0) and f.matches(command):
                    f.hits += 1
                    if f.count is not None:
                        f.count -= 1
                    self._local.fault = f.id
                    return f
        return None

    def power(self, action: str) -> None:
        self.log(f"{action} requested from inside the guest")
        self.runtime.submit(self.runtime.guest_power(self, action))

    def archive_serial(self) -> int:
        return self.runtime.archive_serial()

    def changed(self) -> None:
        self.runtime.mark_dirty(self)

    def later(self, azure_seconds: float, fn: Callable[[], None], *,
              override: str | None = None) -> threading.Event:
        done = threading.Event()
        gen = self.generation

        def run() -> None:
            try:
                if self.generation == gen and self.state == RUNNING and not self.destroyed:
                    fn()
            except Exception:
                log.exception("simulated guest %s: timed work failed", self.name)
            finally:
                done.set()

        self.runtime.call_later(self.runtime.duration(azure_seconds, override), run)
        return done

    def log(self, message: str) -> None:
        log.info("simulated guest %s: %s", self.name, message)

    # identity helpers for the servers ------------------------------------------------------------
    def computer_name(self) -> str:
        if self.os_type == "Windows":
            return str(self.os.get("computer_name", self.name))
        return str(self.system.hostname)

    def windows_user(self, name: str) -> str | None:
        with self.lock:
            canonical = self.system.canonical_user(name)
            if canonical is None or not self.system.users[canonical].get("enabled"):
                return None
            return str(canonical)

    def check_windows_password(self, name: str, password: str) -> bool:
        with self.lock:
            user = self.system.user(name)
            stored = dict(user) if user else None
        if not stored or not stored.get("enabled"):
            return False
        from emulator.guests.simulated.linux import check_password

        return check_password(stored.get("password"), password)

    def windows_nt_hash(self, name: str) -> bytes | None:
        with self.lock:
            user = self.system.user(name) if self.os_type == "Windows" else None
            if not user or not user.get("enabled") or not user.get("nt_hash"):
                return None
            return bytes.fromhex(user["nt_hash"])

    # command log ---------------------------------------------------------------------------------
    def record_start(self, channel: str, user: str, command: str) -> dict[str, Any]:
        rec = {"seq": next(self._seq), "time": _now_iso(), "user": user, "channel": channel, "command": command,
               "exit_code": None, "state": "running", "duration_ms": None, "fault": None,
               "_started": time.monotonic()}
        self._local.fault = None
        with self._meta_lock:
            self.commands.append(rec)
        log.info("simulated guest %s: %s %s ran: %s", self.name, channel, user, command[:200])
        return rec

    def record_end(self, rec: dict[str, Any], exit_code: int | None, state: str) -> None:
        with self._meta_lock:
            rec["exit_code"] = exit_code
            rec["state"] = state
            rec["duration_ms"] = round((time.monotonic() - rec.pop("_started", time.monotonic())) * 1000, 1)
            rec["fault"] = rec.get("fault") or getattr(self._local, "fault", None)

    def record_event(self, channel: str, user: str, command: str, exit_code: int) -> None:
        self.record_end(self.record_start(channel, user, command), exit_code, "done")

    def command_log(self, since: int = 0) -> list[dict[str, Any]]:
        with self._meta_lock:
            return [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.commands if r["seq"] > since]

    # running commands (worker threads) --------------------------------------------------------
    def _top_fault(self, command: str, err: Output, cancel: threading.Event) -> int | None:
        fault = self.take_fault(command)
        if fault is None:
            return None
        self.log(f"fault {fault.id} fired for {command!r}")
        if fault.hang:
            hang(cancel)
        if fault.stderr:
            err.write(fault.stderr if fault.stderr.endswith("\n") else fault.stderr + "\n")
        return fault.exit_code

    def run_ssh(self, command: str | None, user: str, stdin: Input, out: Output, err: Output,
                cancel: threading.Event, pty: bool) -> int | None:
        """An SSH session's exec (or shell) request; None when the connection must just drop."""
        from emulator.guests.simulated.shell import IO, run_shell

        rec = self.record_start("ssh", user, command if command is not None else "<interactive shell>")
        self.active.add(cancel)
        try:
            if command is None:
                code = self._interactive(user, stdin, out, err, cancel, pty)
            else:
                faulted = self._top_fault(command, err, cancel)
                code = faulted if faulted is not None else run_shell(self.system, self, command, user=user,
                                                                     io=IO(stdin, out, err), cancel=cancel)
            self.record_end(rec, code, "done")
            return code
        except PowerOff:
            self.record_end(rec, None, "dropped: the guest powered off")
            return None
        except Cancelled:
            self.record_end(rec, None, "cancelled: the client went away")
            return None
        except Exception as exc:
            log.exception("simulated guest %s: command failed inside the simulator", self.name)
            err.write(f"simulated guest: internal error: {exc}\n")
            self.record_end(rec, 255, "error")
            return 255
        finally:
            self.active.discard(cancel)

    def _interactive(self, user: str, stdin: Input, out: Output, err: Output, cancel: threading.Event,
                     pty: bool) -> int:
        from emulator.guests.simulated import commands  # noqa: F401 - registers the programs
        from emulator.guests.simulated import shparse as sp
        from emulator.guests.simulated.shell import IO, ExitShell, Shell

        sh = Shell(self.system, self, user=user, cancel=cancel, io=IO(stdin, out, err))
        out.write(f"Linux {self.system.hostname} {catalog.KERNEL} x86_64 ({disk.SIMULATED_NOTE})\n\n")
        buf = ""
        while True:
            if pty:
                home = self.system.home_of(user) or "/"
                where = "~" + sh.cwd[len(home):] if sh.cwd == home or sh.cwd.startswith(home + "/") else sh.cwd
                out.write("> " if buf else f"{user}@{self.system.hostname}:{where}{'#' if user == 'root' else '$'} ")
            line = stdin.readline()
            if not line:
                return sh.status
            buf += line
            try:
                tree = sp.parse(buf)
            except sp.Incomplete:
                continue
            except sp.ParseError as exc:
                err.write(f"bash: {exc}\n")
                buf = ""
                continue
            buf = ""
            try:
                sh.exec_seq(tree)
            except ExitShell as e:
                return e.code

    def run_winrm(self, cmd: Any, user: str) -> None:
        """A WinRM Command: cmd.exe /c COMMAND_LINE, its streams drained by Receive."""
        from emulator.guests.simulated.winshell import decode_command_line, run_windows

        rec = self.record_start("winrm", user, decode_command_line(cmd.command_line))
        self.active.add(cmd.cancel)
        try:
            code = run_windows(self.system, self, cmd.command_line, user=user, out=cmd.out, err=cmd.err,
                               cancel=cmd.cancel, stdin=cmd.stdin)
            self.record_end(rec, code, "done")
            cmd.finish(code)
        except Cancelled:
            self.record_end(rec, None, "cancelled")
            cmd.finish(-1)
        except Exception as exc:
            log.exception("simulated guest %s: command failed inside the simulator", self.name)
            cmd.err.write(f"simulated guest: internal error: {exc}\r\n")
            self.record_end(rec, 1, "error")
            cmd.finish(1)
        finally:
            self.active.discard(cmd.cancel)

    def run_script(self, script: str, *, user: str | None, channel: str, timeout: float) -> RunResult:
        """RunCommand (and the console endpoint): a script as root / SYSTEM, outside any session."""
        from emulator.guests.simulated.shell import IO, run_shell
        from emulator.guests.simulated.winshell import SYSTEM_USER, run_powershell_script

        if self.state != RUNNING or self.oobe_stuck:
            raise GuestNotRunning(f"The VM '{self.name}' is not running (its guest is {self.state}).")
        who = user or ("root" if self.os_type == "Linux" else SYSTEM_USER)
        cancel = threading.Event()
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            cancel.set()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        self.active.add(cancel)
        rec = self.record_start(channel, who, script)
        out, err = Buffer(), Buffer()
        timer.start()
        try:
            faulted = self._top_fault(script, err, cancel)
            if faulted is not None:
                code = faulted
            elif self.os_type == "Linux":
                code = run_shell(self.system, self, script, user=who, io=IO(TextInput(""), out, err), cancel=cancel)
            else:
                code = run_powershell_script(self.system, self, script, user=who, out=out, err=err, cancel=cancel)
        except PowerOff:
            err.write("simulated guest: the machine powered off while the script ran\n")
            code = 143
        except Cancelled:
            self.record_end(rec, None, "timed out" if timed_out.is_set() else "cancelled: the guest stopped")
            if timed_out.is_set():
                raise TimeoutError(f"The script did not finish within {timeout:g} seconds.") from None
            raise GuestNotRunning(f"The VM '{self.name}' stopped while the script ran.") from None
        finally:
            timer.cancel()
            self.active.discard(cancel)
        self.record_end(rec, code, "done")
        return RunResult(code, out.getvalue(), err.getvalue())

    # boot (worker thread) ------------------------------------------------------------------------
    def boot_os(self, first: GuestSpec | None) -> str:
        """What happens between power-on and the listeners: ``ok``, ``oobe-wait`` or ``oobe-timeout``."""
        with self.lock:
            if self.os_type == "Linux":
                lines = self.system.boot()
                if first is not None and first.computer_name:
                    lines += self.system.first_boot(Provisioning(
                        instance_id=self.vm_id, hostname=first.computer_name,
                        username=first.admin_username or "azureuser", ssh_keys=list(first.ssh_public_keys),
                        password=first.admin_password, custom_data=_decode(first.custom_data)))
                self.provisioned = True
                for line in lines:
                    self.log(line)
            else:
                system: WindowsSystem = self.system
                if first is not None and first.computer_name:
                    if not system.can_specialize():
                        self.log(f"OOBE cannot start: the disk is {system.image_state}, not sysprepped")
                        return "oobe-timeout"
                    for line in system.first_boot(WindowsProvisioning(
                            self.vm_id, first.computer_name, first.admin_username or "azureuser",
                            first.admin_password or "")):
                        self.log(line)
                    if first.custom_data:
                        system.os.setdefault("files", {})[r"c:\azuredata\customdata.bin"] = {
                            "path": r"C:\AzureData\CustomData.bin",
                            "data": (_decode(first.custom_data) or b"").decode(errors="replace")}
                elif system.image_state == GENERALIZED:
                    self.log("the disk is sysprepped and nothing answers OOBE: the machine waits at the setup screen")
                    return "oobe-wait"
                self.provisioned = True
                system.boot()
        if first is not None and self.os_type == "Linux":
            self._cloud_init_user_data(first)
        self.pending_spec = None
        self.changed()
        return "ok"

    def _cloud_init_user_data(self, first: GuestSpec) -> None:
        """customData: a shell script runs as root; #cloud-config write_files/packages/runcmd are applied."""
        from emulator.guests.simulated.shell import IO, run_shell

        data = _decode(first.custom_data)
        if not data:
            return
        text = data.decode(errors="replace")
        out = Buffer()
        io = IO(TextInput(""), out, out)
        cancel = threading.Event()
        try:
            if text.startswith("#!"):
                code = run_shell(self.system, self, text, user="root", io=io, cancel=cancel)
                self.log(f"cloud-init: user-data script exited {code}")
            elif text.startswith("#cloud-config"):
                import yaml

                cfg = yaml.safe_load(text) or {}
                with self.lock:
                    for f in cfg.get("write_files", []) or []:
                        path = str(f["path"])
                        self.system.mkdir(os.path.dirname(path), parents=True)
                        self.system.write(path, str(f.get("content", "")),
                                          mode=int(str(f.get("permissions", "0644")), 8))
                    if cfg.get("packages"):
                        serial = self.archive_serial()
                        self.os.setdefault("apt", {})["lists_serial"] = serial
                        self.system.install([str(p) for p in cfg["packages"]], serial)
                for cmd in cfg.get("runcmd", []) or []:
                    line = cmd if isinstance(cmd, str) else " ".join(_shquote(str(c)) for c in cmd)
                    run_shell(self.system, self, line, user="root", io=io, cancel=cancel)
        except PowerOff:
            pass
        except Exception as exc:
            out.write(f"cloud-init: user-data failed: {exc}\n")
        with self.lock:
            self.system.write("/var/log/cloud-init-output.log", out.getvalue(), append=True)

    # views ------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        ports: dict[str, int] = ({"ssh": self.runtime.ssh_port} if self.os_type == "Linux"
                                 else {"winrm": self.runtime.winrm_port, "winrms": self.runtime.winrms_port})
        return {
            "vm_id": self.vm_id, "name": self.name, "os": self.os_type, "image": self.os.get("image"),
            "address": self.address, "ports": ports, "state": self.state, "simulated": True,
            "hostname": self.computer_name(), "provisioned": self.provisioned, "oobe_stuck": self.oobe_stuck,
            "commands": len(self.commands), "faults": len(self.faults),
        }

    def detail(self) -> dict[str, Any]:
        with self.lock:
            info = self.summary()
            if self.os_type == "Linux":
                info.update({
                    "machine_id": self.system.machine_id(), "users": sorted(self.system.users),
                    "packages": len(self.system.packages), "host_keys": self.system.host_key_fingerprints(),
                    "provisioned_user": self.system.provisioned_user(),
                    "deprovisioned": bool(self.os.get("waagent_deprovisioned")),
                    "cloud_init": self.system.cloud_init_status(),
                })
            else:
                info.update({
                    "image_state": self.system.image_state, "users": sorted(self.system.users),
                    "hotfixes": [h["HotFixID"] for h in self.system.hotfixes], "features": list(self.system.features),
                })
            info["history"] = list(self.os.get("history", []))[-20:]
        return info

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "vm_id": self.vm_id, "os_type": self.os_type, "address": self.address,
                "state": "running" if self.state in (STARTING, RUNNING) else "stopped",
                "provisioned": self.provisioned, "oobe_stuck": self.oobe_stuck,
                "computer_name": self.computer_name_hint, "admin_username": self.admin_username,
                "os": copy.deepcopy(self.os),
            }

    @classmethod
    def from_snapshot(cls, runtime: SimulatedRuntime, data: dict[str, Any]) -> Guest:
        g = cls(runtime, data["vm_id"], data["os_type"], data["os"], address=data.get("address", ""),
                provisioned=bool(data.get("provisioned")))
        g.oobe_stuck = bool(data.get("oobe_stuck"))
        g.computer_name_hint = data.get("computer_name")
        g.admin_username = data.get("admin_username")
        return g


def _decode(custom_data: str | None) -> bytes | None:
    if not custom_data:
        return None
    try:
        return base64.b64decode(custom_data)
    except ValueError:
        return custom_data.encode()


def _shquote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


class SimulatedRuntime:
    """Simulated Linux and Windows guests; see the module docstring."""

    name = "simulated"

    def __init__(self, events: GuestEvents | None, ctx: Context, *, ssh_port: int | None = None,
                 winrm_port: int | None = None, winrms_port: int | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.events = events
        self.ctx = ctx
        self.ssh_port = ssh_port if ssh_port is not None else default_ssh_port()
        default_http, default_https = default_winrm_ports()
        self.winrm_port = winrm_port if winrm_port is not None else default_http
        self.winrms_port = winrms_port if winrms_port is not None else default_https
        self.guests: dict[str, Guest] = {}
        self._guests_lock = threading.RLock()
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="simulated-guest")
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self.loop = loop or ctx.extras.get("loop") or self._start_own_loop()
        self._time_factor = ctx.current_time_factor()
        override = ctx.store.get_setting(ARCHIVE)
        self.archive_override: int | None = int(override) if override is not None else None
        self._dirty: dict[str, Guest | None] = {}
        self._cond = threading.Condition()
        self._persisting = False
        self._stop = threading.Event()
        self._index: set[str] = set(ctx.store.get_setting(INDEX, []) or [])
        self._persister = threading.Thread(target=self._persist_loop, name="simulated-guest-store", daemon=True)
        self._persister.start()
        self._started = False

    # plumbing ---------------------------------------------------------------------------------------
    def _start_own_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        self._own_loop = loop
        self._loop_thread = threading.Thread(target=loop.run_forever, name="simulated-guest-loop", daemon=True)
        self._loop_thread.start()
        return loop

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)

        def report(f: concurrent.futures.Future[Any]) -> None:
            if not f.cancelled() and f.exception() is not None:
                log.error("simulated guests: background task failed", exc_info=f.exception())

        future.add_done_callback(report)
        return future

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        def arm() -> None:
            self.loop.call_later(delay, lambda: self.executor.submit(fn))

        self.loop.call_soon_threadsafe(arm)

    def duration(self, azure_seconds: float, override: str | None = None) -> float:
        """Wall-clock seconds for ``azure_seconds``: scaled by the time factor, unless the emulator setting
        ``override`` holds a number above 0 (then that many seconds, whatever the time factor)."""
        if override:
            fixed = float(self.ctx.store.get_setting(override) or 0)
            if fixed > 0:
                return fixed
        return max(0.0, azure_seconds * self._time_factor)

    def refresh_time_factor(self) -> None:
        try:
            self._time_factor = self.ctx.current_time_factor()
        except Exception:
            pass

    def archive_serial(self) -> int:
        if self.archive_override is not None:
            return self.archive_override
        return catalog.serial_now(time.time())

    def set_archive_serial(self, serial: int | None) -> None:
        self.archive_override = serial
        self.ctx.store.set_setting(ARCHIVE, serial)

    def _fire(self, kind: str, vm_id: str, *args: str) -> None:
        def call() -> None:
            sink = self.events or self.ctx.extras.get("guest_events")
            if sink is None:
                log.warning("simulated guests: no events sink registered; dropped %s(%s)", kind, vm_id)
                return
            try:
                getattr(sink, kind)(vm_id, *args)
            except Exception:
                log.exception("simulated guests: events.%s(%s) failed", kind, vm_id)

        self.executor.submit(call)

    def _key(self, vm_id: str) -> str:
        return vm_id.lower()

    def _load(self, vm_id: str) -> Guest | None:
        data = self.ctx.store.get_setting(SETTING + self._key(vm_id))
        return Guest.from_snapshot(self, data) if isinstance(data, dict) else None

    def _get(self, vm_id: str, *, load: bool = True) -> Guest | None:
        key = self._key(vm_id)
        with self._guests_lock:
            g = self.guests.get(key)
            if g is None and load:
                g = self._load(vm_id)
                if g is not None:
                    self.guests[key] = g
            return g

    # persistence ----------------------------------------------------------------------------------
    def mark_dirty(self, guest: Guest) -> None:
        with self._cond:
            self._dirty[self._key(guest.vm_id)] = guest
            self._cond.notify_all()

    def _mark_deleted(self, vm_id: str) -> None:
        with self._cond:
            self._dirty[self._key(vm_id)] = None
            self._cond.notify_all()

    def _persist_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._dirty:
                    self._cond.wait(0.5)
            self._stop.wait(0.05)  # let a burst of changes (a script's commands) coalesce into one write
            with self._cond:
                batch, self._dirty = self._dirty, {}
                self._persisting = bool(batch)
            self.refresh_time_factor()
            try:
                for key, guest in batch.items():
                    self._persist(key, guest)
            except Exception:
                log.exception("simulated guests: persisting guest state failed")
            finally:
                with self._cond:
                    self._persisting = False
                    self._cond.notify_all()

    def _persist(self, key: str, guest: Guest | None) -> None:
        snap = guest.snapshot() if guest is not None and not guest.destroyed else None
        store = self.ctx.store
        with store.tx():
            if snap is not None and guest is not None and not guest.destroyed:
                store.set_setting(SETTING + key, snap)
                if key not in self._index:
                    self._index.add(key)
                    store.set_setting(INDEX, sorted(self._index))
            else:
                store.set_setting(SETTING + key, None)
                if key in self._index:
                    self._index.discard(key)
                    store.set_setting(INDEX, sorted(self._index))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every change so far is in the store."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._dirty or self._persisting:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    # GuestRuntime ---------------------------------------------------------------------------------
    def boot(self, spec: GuestSpec) -> None:
        """Create (first call) or start the guest; ``booted`` fires once its listener answers."""
        self.refresh_time_factor()
        key = self._key(spec.vm_id)
        with self._guests_lock:
            g = self._get(spec.vm_id)
            if g is None:
                failure = boot_failure(spec)  # an imported disk with no OS on it: fails as a VM's boot does
                if failure is not None:
                    log.warning("simulated guest %s: %s", spec.vm_id.rsplit("/", 1)[-1], failure[1])
                    self._fire("failed", spec.vm_id, *failure)
                    return
                if not disk.is_simulated(spec.disk):
                    raise ValueError(f"the simulated runtime cannot boot a {spec.disk.get('kind')!r} disk")
                family = spec.disk["os"].get("family")
                if family != spec.os_type.lower():
                    raise ValueError(f"the disk holds a {family} system but the VM's osType is {spec.os_type}")
                g = Guest(self, spec.vm_id, spec.os_type, copy.deepcopy(spec.disk["os"]), address=spec.address,
                          provisioned=False)
                self.guests[key] = g
            g.address = spec.address
            g.computer_name_hint = spec.computer_name or g.computer_name_hint
            g.admin_username = spec.admin_username or g.admin_username
            if not g.provisioned:
                g.pending_spec = spec
            state = g.state
            if state in (STARTING, RUNNING):
                if state == RUNNING and not g.oobe_stuck:
                    self._fire("booted", g.vm_id)
                return
            g.generation += 1
            gen = g.generation
            waiting_for_stop = state == STOPPING
            g.state = STARTING
        self.mark_dirty(g)
        g.log(f"power on ({'first boot' if not g.provisioned else 'start'}) at {g.address}")
        self.submit(self._boot(g, gen, self.duration(BOOT_SECONDS[g.os_type]), silent=False,
                               after_stop=waiting_for_stop))

    async def _boot(self, g: Guest, gen: int, delay: float, *, silent: bool, after_stop: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if after_stop:
            await self._drop(g)
        await asyncio.sleep(delay)
        if g.generation != gen or g.destroyed:
            return
        first = g.pending_spec if not g.provisioned else None
        try:
            outcome = await loop.run_in_executor(self.executor, g.boot_os, first)
        except Exception as exc:
            log.exception("simulated guest %s: boot failed", g.name)
            g.state = FAILED
            self.mark_dirty(g)
            self._fire("failed", g.vm_id, "OSProvisioningClientError", f"The simulated guest failed to boot: {exc}")
            return
        if g.generation != gen or g.destroyed:
            return
        g.boots += 1
        if outcome != "ok":
            g.state = RUNNING
            g.oobe_stuck = True
            self.mark_dirty(g)
            if outcome == "oobe-wait":
                if not silent or g.announce:
                    g.announce = False
                    self._fire("booted", g.vm_id)
                return
            await asyncio.sleep(self.duration(PROVISION_TIMEOUT))
            if g.generation == gen and not g.destroyed:
                self._fire("failed", g.vm_id, "OSProvisioningTimedOut",
                           f"OS Provisioning for VM '{g.name}' did not finish in the allotted time. The VM may still "
                           "finish provisioning successfully. Please check provisioning state later. Also, make sure "
                           "the image has been properly prepared (generalized).")
            return
        g.oobe_stuck = False
        try:
            await self._listen(g)
        except OSError as exc:
            g.state = FAILED
            self.mark_dirty(g)
            port = self.ssh_port if g.os_type == "Linux" else self.winrm_port
            g.log(f"cannot listen on {g.address}:{port}: {exc}")
            self._fire("failed", g.vm_id, "SimulatedGuestListenFailed",
                       f"The simulated guest could not listen on {g.address}:{port}: {exc}")
            return
        if g.generation != gen or g.destroyed:
            await self._drop(g)
            return
        g.state = RUNNING
        self.mark_dirty(g)
        g.log(f"up: {'sshd on ' + g.address + ':' + str(self.ssh_port) if g.os_type == 'Linux' else 'WinRM on ' + g.address}")
        if not silent or g.announce:
            g.announce = False
            self._fire("booted", g.vm_id)

    async def _listen(self, g: Guest) -> None:
        if not g.address:
            # no public IP: like a VM on a private subnet, unreachable from here (run_command still works);
            # never fall back to every interface, where the next such guest would collide
            g.log("no public IP address: SSH/WinRM not reachable from the host")
            return
        if g.os_type == "Linux":
            from emulator.guests.simulated.sshd import start_sshd

            g.sshd = await start_sshd(g, g.address, self.ssh_port)
        else:
            from emulator.guests.simulated.winrm import WinRMServer

            server = WinRMServer(g)
            try:
                await server.start(g.address, self.winrm_port, self.winrms_port)
            except OSError:
                await server.close()
                raise
            g.winrm = server

    async def _drop(self, g: Guest) -> None:
        """Pull the network: cancel running commands, stop listening, cut every connection."""
        for ev in list(g.active):
            ev.set()
        sshd, g.sshd = g.sshd, None
        if sshd is not None:
            sshd.close()
        for conn in list(g.connections):
            try:
                conn.abort()
            except Exception:
                pass
        g.connections.clear()
        winrm, g.winrm = g.winrm, None
        if winrm is not None:
            await winrm.close()
        if sshd is not None:
            try:
                await asyncio.wait_for(sshd.wait_closed(), 2)
            except Exception:
                pass

    async def _power_off(self, g: Guest, delay: float, reason: str) -> None:
        if g.state in (STOPPING, STOPPED) or g.destroyed:
            if g.state == STOPPED and reason == "api":
                self._fire("stopped", g.vm_id)
            return
        g.state = STOPPING
        g.generation += 1
        gen = g.generation
        g.log(f"shutting down ({reason})")
        await self._drop(g)
        await asyncio.sleep(delay)
        if g.destroyed or g.generation != gen:
            return
        with g.lock:
            if g.os_type == "Linux":
                for svc in g.system.services.values():
                    svc["active"] = False
        g.state = STOPPED
        g.oobe_stuck = False  # decided again at the next boot
        self.mark_dirty(g)
        g.log("stopped")
        self._fire("stopped", g.vm_id)

    async def guest_power(self, g: Guest, action: str) -> None:
        """The guest asked to power off or reboot (shutdown, poweroff, Stop-Computer, sysprep /shutdown)."""
        if g.destroyed or g.state != RUNNING:
            return
        if g.os_type == "Windows":
            await asyncio.sleep(max(self.duration(5), WINDOWS_POWER_GRACE))
            if g.state != RUNNING:
                return
        if action == "reboot":
            g.generation += 1
            gen = g.generation
            g.log("rebooting")
            await self._drop(g)
            g.state = STARTING
            await self._boot(g, gen, self.duration(REBOOT_SECONDS[g.os_type]), silent=True)
            return
        await self._power_off(g, self.duration(SHUTDOWN_SECONDS[g.os_type]), "guest")

    def shutdown(self, vm_id: str, *, force: bool = False) -> None:
        """ACPI shutdown (or pull the plug with ``force``); ``stopped`` follows, also for a guest already off."""
        self.refresh_time_factor()
        g = self._get(vm_id)
        if g is None or g.state == STOPPED:
            self._fire("stopped", vm_id)
            return
        if g.state == STOPPING:
            return
        delay = 0.0 if force else self.duration(SHUTDOWN_SECONDS[g.os_type])
        self.submit(self._power_off(g, delay, "api"))

    def destroy(self, vm_id: str) -> None:
        """Stop it if running and forget it (its disk, listeners, persisted state). Idempotent."""
        key = self._key(vm_id)
        with self._guests_lock:
            g = self.guests.pop(key, None)
        if g is not None:
            g.destroyed = True
            g.generation += 1
            for ev in list(g.active):
                ev.set()
            g.log("destroyed")
            self.submit(self._drop(g))
        self._mark_deleted(vm_id)

    def capture(self, vm_id: str) -> dict[str, Any]:
        """A disk descriptor holding a deep copy of the stopped guest's OS disk."""
        g = self._get(vm_id)
        if g is None:
            raise KeyError(f"no simulated guest for VM {vm_id}")
        if g.state != STOPPED:
            raise RuntimeError(f"cannot capture the disk of VM {g.name} while its guest is {g.state}")
        with g.lock:
            g.os.setdefault("history", []).append({"event": "captured", "from": g.vm_id})
            descriptor = disk.descriptor(g.os)
        self.mark_dirty(g)
        return descriptor

    def release_disk(self, disk: dict[str, Any]) -> None:
        """Simulated disks are self-contained JSON: nothing is held outside the descriptor."""

    def run_command(self, vm_id: str, script: list[str], timeout: float) -> RunResult:
        g = self._get(vm_id, load=False)
        if g is None:
            raise GuestNotRunning(f"The VM '{vm_id.rsplit('/', 1)[-1]}' has no running guest.")
        return g.run_script("\n".join(script), user=None, channel="run-command", timeout=timeout)

    def is_running(self, vm_id: str) -> bool:
        g = self._get(vm_id, load=False)
        return g is not None and g.state in (STARTING, RUNNING)

    def recover(self, vm_ids: dict[str, GuestSpec]) -> None:
        """After a restart: bring back the guests of VMs ARM says are running, then report them booted."""
        self.refresh_time_factor()
        for vm_id, spec in vm_ids.items():
            g = self._get(vm_id)
            if g is not None and g.state == RUNNING:
                if not g.oobe_stuck:
                    self._fire("booted", g.vm_id)
                continue
            if g is not None and g.state == STARTING:
                g.announce = True
                continue
            if g is None:
                self.boot(spec)
                continue
            g.address = spec.address or g.address
            g.generation += 1
            g.state = STARTING
            self.submit(self._boot(g, g.generation, 0.0, silent=False))

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Reload persisted guests; those that were running come back up (without events)."""
        if self._started:
            return
        self._started = True
        for key in sorted(self._index):
            with self._guests_lock:
                if key in self.guests:
                    continue
                data = self.ctx.store.get_setting(SETTING + key)
                if not isinstance(data, dict):
                    continue
                g = Guest.from_snapshot(self, data)
                self.guests[key] = g
            if data.get("state") == "running":
                g.generation += 1
                g.state = STARTING
                g.log("restarting after an emulator restart")
                self.submit(self._boot(g, g.generation, 0.0, silent=True))

    async def aclose(self) -> None:
        """Stop every listener (guests stay 'running' in the store, to come back after a restart)."""
        for g in list(self.guests.values()):
            g.generation += 1
            await self._drop(g)
            self.mark_dirty(g)
        await asyncio.get_running_loop().run_in_executor(None, self.flush)
        self._stop_threads()
        if self._own_loop is not None:
            self._own_loop.call_soon(self._own_loop.stop)

    def close(self) -> None:
        """Synchronous shutdown for tools and tests that own the runtime (never call it on the loop thread)."""
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), self.loop).result(30)
        else:
            self._stop_threads()
        if self._loop_thread is not None:
            self._loop_thread.join(timeout=5)
            if self._own_loop is not None and not self._own_loop.is_running():
                self._own_loop.close()

    def _stop_threads(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._persister.join(timeout=5)
        self.executor.shutdown(wait=False, cancel_futures=True)

    # ops -------------------------------------------------------------------------------------------
    def find(self, ref: str) -> list[Guest]:
        """Guests matching a VM id, VM name, host/computer name or address (case-insensitive)."""
        low = ref.lower()
        with self._guests_lock:
            guests = list(self.guests.values())
        exact = [g for g in guests if g.vm_id.lower() == low]
        if exact:
            return exact
        return [g for g in guests if low in (g.name.lower(), g.computer_name().lower(), g.address.lower(),
                                             (g.computer_name_hint or "").lower())]

    def list(self) -> list[Guest]:
        with self._guests_lock:
            return list(self.guests.values())

    def add_fault(self, g: Guest, fault: Fault) -> Fault:
        with g._meta_lock:
            g.faults.append(fault)
        return fault

    def clear_faults(self, g: Guest, fault_id: str | None = None) -> bool:
        with g._meta_lock:
            before = len(g.faults)
            g.faults = [f for f in g.faults if fault_id is not None and f.id != fault_id]
            return len(g.faults) != before


def runtime_for(ctx: Context) -> SimulatedRuntime:
    """The emulator's simulated runtime (``ctx.extras["guests"]``), created on first use."""
    rt = ctx.extras.get("guests")
    if isinstance(rt, SimulatedRuntime):
        return rt
    rt = SimulatedRuntime(None, ctx)
    ctx.extras["guests"] = rt
    return rt


class GuestsLifecycle:
    """LIFECYCLE hook: the runtime exists from startup (ctx.extras["guests"]) and closes its listeners at shutdown."""

    async def startup(self, ctx: Context) -> None:
        runtime_for(ctx).start()

    async def shutdown(self, ctx: Context) -> None:
        rt = ctx.extras.get("guests")
        if isinstance(rt, SimulatedRuntime):
            await rt.aclose()


lifecycle = GuestsLifecycle()

if TYPE_CHECKING:  # mypy checks that the runtime satisfies compute's protocol
    def _conforms(rt: SimulatedRuntime) -> GuestRuntime:
        return rt
