"""The QEMU guest runtime: each Linux VM is a real Debian machine under QEMU (TCG), reachable by SSH.

``QemuRuntime`` implements ``emulator.guests.base.GuestRuntime``. A VM gets a directory,
``<state>/guests/<sha256(vm id)[:16]>/``, holding its qcow2 overlay on the source disk (the
source is never written), its NoCloud seed (generalized sources only), QMP and guest-agent
sockets, the serial console log and QEMU's pidfile. SSH is forwarded by QEMU's user network
from ``<public IP>:<LOCAL_AZURE_SSH_PORT, default 22>`` to the guest's port 22.

State follows the machine: a watcher thread per boot reports ``booted`` once the guest's sshd
sends its banner (the guest agent answering ``guest-ping`` for VMs without an address), and
``stopped`` when the QEMU process exits (a guest ``poweroff`` ends QEMU: no ``-no-reboot``, so
a guest reboot stays a reboot). ``failed`` when QEMU dies while starting or no SSH comes within
``LOCAL_AZURE_QEMU_BOOT_TIMEOUT`` (600 s). A boot that stalls (a kernel lockup on the console, or
a console silent for ``LOCAL_AZURE_QEMU_STALL_RESET``, 150 s) is reset, at most twice, before that.
Run Command goes through the guest agent.

Restarts: the process is started in its own session and outlives a crashed emulator;
``recover`` adopts a QEMU whose pidfile and ``/proc/<pid>/cmdline`` match the VM's overlay
(never a second process on the same disk), starts the others again, and stops live QEMUs
of VMs ARM no longer runs (no orphans). On a clean emulator shutdown the guests are powered
off (ACPI, then killed after ``CLOSE_GRACE``) unless ``LOCAL_AZURE_QEMU_ON_EXIT=keep``, which
leaves them running for the next emulator to adopt.

Selection (for compute, not wired here): ``LOCAL_AZURE_LINUX_RUNTIME=qemu|simulated`` (see
``linux_runtime_name``); Windows VMs always use the simulated runtime. ``runtime_for(ctx)``
creates the emulator's QEMU runtime and ``lifecycle`` closes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.core.context import Context
from emulator.guests.base import GuestEvents, GuestRuntime, GuestSpec, RunResult
from emulator.guests.imported import boot_failure
from emulator.guests.qemu import qga, qmp
from emulator.guests.qemu.seed import build_seed
from emulator.guests.qemu.tools import tool

if TYPE_CHECKING:
    from emulator.guests.qemu.image import BaseImage

log = logging.getLogger("emulator.guests.qemu")

STARTING, RUNNING, STOPPING, STOPPED, FAILED = "starting", "running", "stopping", "stopped", "failed"
MEMORY_MIB = 1024
CPUS = 2
START_GRACE = 5.0  # a QEMU that exits this soon after launch with an error never started
CLOSE_GRACE = 20.0  # real seconds an emulator shutdown gives guests to power off before killing them
POLL = 1.0
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; longer paths go through /proc/self/fd/<dir fd>/


def default_ssh_port() -> int:
    return int(os.environ.get("LOCAL_AZURE_SSH_PORT", "22"))


def boot_timeout() -> float:
    return float(os.environ.get("LOCAL_AZURE_QEMU_BOOT_TIMEOUT", "600"))


def stall_seconds() -> float:
    """A booting guest whose console stays silent this long is reset (0: never)."""
    return float(os.environ.get("LOCAL_AZURE_QEMU_STALL_RESET", "150"))


# Under TCG a guest now and then locks up in early boot (a soft lockup in udev, about 1 boot in 8
# on these machines): the kernel says so on the console, or the console stops. A real machine
# would not hang there, so the local Azure resets it (at most twice) instead of waiting the full
# boot timeout for an OSProvisioningTimedOut.
LOCKUP_MARKS = ("soft lockup", "hung_task", "blocked for more than", "detected stall", "self-detected stall")
MAX_STALL_RESETS = 2


def shutdown_timeout() -> float:
    """Seconds an ACPI power-off gets before QEMU is stopped hard (Azure waits minutes; TCG needs ~3 s)."""
    return float(os.environ.get("LOCAL_AZURE_QEMU_SHUTDOWN_TIMEOUT", "120"))


def linux_runtime_name(env: Mapping[str, str] | None = None) -> str:
    """Which runtime compute should give Linux VMs: ``qemu`` or ``simulated`` (the default).

    ``env`` (default: this process's) lets a launcher tell what an emulator it starts will select."""
    name = (os.environ if env is None else env).get("LOCAL_AZURE_LINUX_RUNTIME", "simulated").strip().lower()
    if name not in ("qemu", "simulated"):
        raise ValueError(f"LOCAL_AZURE_LINUX_RUNTIME must be 'qemu' or 'simulated', not {name!r}")
    return name


def vm_key(vm_id: str) -> str:
    return hashlib.sha256(vm_id.lower().encode()).hexdigest()[:16]


def ssh_banner(address: str, port: int, timeout: float = 3.0) -> bool:
    """Does sshd answer at address:port? QEMU's forwarder accepts before the guest listens, so read the banner."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(256).startswith(b"SSH-")
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """A live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def qemu_pid_for(vm_dir: Path) -> int | None:
    """The pid in the VM's pidfile if that process is a QEMU running this VM's overlay."""
    try:
        pid = int((vm_dir / "qemu.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    overlay = str(vm_dir / "overlay.qcow2").encode()
    if not cmdline or b"qemu-system" not in Path(cmdline[0].decode(errors="replace")).name.encode():
        return None
    if not any(overlay in arg for arg in cmdline) or not pid_alive(pid):
        return None
    return pid


def qemu_command(vm_dir: Path, disk: dict[str, Any], *, address: str, ssh_port: int, seed: Path | None,
                 memory_mib: int = MEMORY_MIB, cpus: int = CPUS) -> list[str]:
    """The QEMU command line (relative socket paths: QEMU runs in the VM directory).

    Boot cost against Packer's guest (raw copy, no agent, no QMP; bench/guest_cycle.py): in the
    guest, ssh.service waits on fsck-root → remount-fs → cloud-init-local → networkd → wait-online
    → cloud-init → sysinit.target; qemu-guest-agent.service starts only after sysinit.target, and
    the kernel phase took the same 7.4 s in both. Two clean alternating pairs (no other QEMU, load
    ~2.3) gave SSH 34.0/30.0 s vs 29.0/30.4 s and QEMU CPU 52.3 s vs 49.7 s per boot (cloud-init
    done): a gap of ~1-3 s, far below the run-to-run noise when other guests share the 2 cores.
    Not yet isolated: qcow2 over a raw base (instead of qcow2) changed nothing in one sample.
    """
    append = f"root=UUID={disk['root_uuid']} ro console=ttyS0"
    if disk.get("cmdline"):
        append = " ".join(dict.fromkeys([*append.split(), *str(disk["cmdline"]).split()]))
    netdev = "user,id=n0"
    if address:
        netdev += f",hostfwd=tcp:{address}:{ssh_port}-:22"
    cmd = [
        tool("qemu-system-x86_64"),
        "-name", f"local-azure-{vm_dir.name}",
        "-accel", "tcg,thread=multi", "-smp", str(cpus), "-m", str(memory_mib),
        "-display", "none", "-monitor", "none", "-serial", "file:console.log",
        "-kernel", str(disk["kernel"]), "-initrd", str(disk["initrd"]), "-append", append,
        "-drive", f"file={vm_dir / 'overlay.qcow2'},format=qcow2,if=virtio,cache=writeback,discard=unmap",
    ]
    if seed is not None:
        cmd += ["-drive", f"file={seed},format=raw,media=cdrom,readonly=on"]
    cmd += [
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
        "-qmp", "unix:qmp.sock,server=on,wait=off",
        "-chardev", "socket,path=qga.sock,server=on,wait=off,id=qga0",
        "-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        "-device", "virtio-rng-pci",  # entropy for sshd and cloud-init without waiting on jitter
        "-pidfile", "qemu.pid",
    ]
    return cmd


class GuestNotRunning(RuntimeError):
    """The VM's guest is not running, so it cannot run a command."""


class QemuVm:
    """One VM's machine: its directory, its QEMU process (ours or adopted) and its state."""

    def __init__(self, vm_id: str, vm_dir: Path) -> None:
        self.vm_id = vm_id
        self.name = vm_id.rstrip("/").rsplit("/", 1)[-1]
        self.dir = vm_dir
        self.state = STOPPED
        self.generation = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.address = ""
        self.disk: dict[str, Any] = {}
        self.seeded = False
        self.booted = False
        self.destroyed = False
        self.started_at = 0.0
        self.qga_lock = threading.Lock()  # the agent's port has one reader: one session at a time
        self.dir_fd: int | None = None

    # files ----------------------------------------------------------------------------------------
    @property
    def overlay(self) -> Path:
        return self.dir / "overlay.qcow2"

    @property
    def seed(self) -> Path:
        return self.dir / "seed.iso"

    def sock(self, name: str) -> str:
        """A connectable path to one of the VM's sockets, short enough for sun_path."""
        full = str(self.dir / name)
        if len(full) <= SOCKET_PATH_MAX:
            return full
        if self.dir_fd is None:
            self.dir_fd = os.open(self.dir, os.O_PATH | os.O_DIRECTORY)
        return f"/proc/self/fd/{self.dir_fd}/{name}"

    def close_dir(self) -> None:
        fd, self.dir_fd = self.dir_fd, None
        if fd is not None:
            os.close(fd)

    def save(self) -> None:
        meta = {"vm_id": self.vm_id, "address": self.address, "disk": self.disk, "seeded": self.seeded}
        tmp = self.dir / "vm.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(self.dir / "vm.json")

    def load(self) -> bool:
        try:
            meta = json.loads((self.dir / "vm.json").read_text())
        except (OSError, ValueError):
            return False
        self.address, self.disk, self.seeded = meta.get("address", ""), meta.get("disk", {}), bool(meta.get("seeded"))
        return True

    # process --------------------------------------------------------------------------------------
    def exit_code(self) -> int | None:
        """None while QEMU runs; its exit code (-1 when unknown: an adopted process) once it is gone."""
        if self.proc is not None:
            return self.proc.poll()
        if self.pid is not None and pid_alive(self.pid):
            return None
        return -1 if self.pid is not None else 0

    def alive(self) -> bool:
        return (self.proc is not None or self.pid is not None) and self.exit_code() is None

    def kill(self, wait: float = 10.0) -> None:
        """Stop QEMU now (QMP quit, then SIGKILL) and reap it."""
        if not self.alive():
            self._reap()
            return
        try:
            qmp.run(self.sock("qmp.sock"), "quit", timeout=3)
        except Exception:
            wait = 0.0  # no QMP (stale socket, or not QEMU's): straight to the signal
        deadline = time.monotonic() + wait
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            pid = self.proc.pid if self.proc is not None else self.pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 5
            while self.alive() and time.monotonic() < end:
                time.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def console_tail(self, lines: int = 15) -> str:
        parts = []
        for name in ("qemu.log", "console.log"):
            with contextlib.suppress(OSError):
                text = (self.dir / name).read_text(errors="replace").strip().splitlines()[-lines:]
                if text:
                    parts.append(f"{name}: " + " | ".join(text))
        return "; ".join(parts)


class QemuRuntime:
    """Real Linux guests under QEMU; see the module docstring. Safe to call from any thread."""

    name = "qemu"

    def __init__(self, events: GuestEvents | None, ctx: Context, *, ssh_port: int | None = None) -> None:
        self.ctx = ctx
        self.events = events
        self.ssh_port = ssh_port if ssh_port is not None else default_ssh_port()
        self.root = Path(ctx.state_dir) / "guests"
        self.disks_dir = Path(ctx.state_dir) / "disks"
        self.vms: dict[str, QemuVm] = {}
        self._lock = threading.RLock()
        self._closing = False

    # helpers ------------------------------------------------------------------------------------------
    def _fire(self, event: str, vm_id: str, *args: str) -> None:
        if self._closing:
            return
        sink = self.events or self.ctx.extras.get("guest_events")
        if sink is None:
            log.warning("qemu guest %s: %s with no events sink", vm_id, event)
            return
        try:
            getattr(sink, event)(vm_id, *args)
        except Exception:
            log.exception("qemu guest %s: events sink failed on %s", vm_id, event)

    def _vm(self, vm_id: str, *, create: bool = False) -> QemuVm | None:
        key = vm_key(vm_id)
        with self._lock:
            vm = self.vms.get(key)
            if vm is None:
                vm_dir = self.root / key
                if not create and not (vm_dir / "vm.json").exists():
                    return None
                vm = QemuVm(vm_id, vm_dir)
                vm.load()
                self.vms[key] = vm
            return vm

    def _thread(self, target: Any, *args: Any, name: str) -> None:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()

    # boot -----------------------------------------------------------------------------------------------
    def boot(self, spec: GuestSpec) -> None:
        """First call: overlay + seed + QEMU; later calls: start QEMU again on the same overlay."""
        if spec.os_type != "Linux":
            raise ValueError(f"the QEMU runtime runs Linux guests only; VM {spec.vm_id} is {spec.os_type}")
        failure = boot_failure(spec)  # an imported disk with no OS on it: fails as a VM's boot does
        if failure is not None:
            log.warning("qemu guest %s: %s", spec.vm_id.rsplit("/", 1)[-1], failure[1])
            self._fire("failed", spec.vm_id, *failure)
            return
        vm = self._vm(spec.vm_id, create=True)
        assert vm is not None
        with self._lock:
            if vm.destroyed:
                return
            if vm.state == RUNNING and vm.alive():
                self._fire("booted", vm.vm_id)
                return
            if vm.state == STARTING and vm.alive():
                return
            vm.generation += 1
            gen = vm.generation
            after_stop = vm.state == STOPPING
            vm.state = STARTING
            vm.booted = False
        self._thread(self._start, vm, gen, spec, after_stop, name=f"qemu-start-{vm.name}")

    def _prepare(self, vm: QemuVm, spec: GuestSpec) -> None:
        """The VM's own disk (and seed) on first boot; the source disk is only ever read."""
        vm.address = spec.address or vm.address
        if vm.overlay.exists():
            vm.save()
            return
        disk = spec.disk
        if disk.get("kind") != "file" or disk.get("format") not in ("qcow2", "vpc"):
            raise ValueError(f"the QEMU runtime boots file disks (qcow2 or vpc), not {disk.get('kind')!r}")
        vm.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(vm.dir, 0o700)
        vm.disk = dict(disk)
        if spec.computer_name:  # generalized: provision from osProfile; specialized keeps its identity
            build_seed(spec, vm.seed)
            vm.seeded = True
        partial = vm.dir / "overlay.qcow2.part"
        subprocess.run([tool("qemu-img"), "create", "-q", "-f", "qcow2", "-F", str(disk["format"]),
                        "-b", str(Path(disk["path"]).resolve()), str(partial)],
                       check=True, capture_output=True, timeout=60)
        partial.replace(vm.overlay)
        vm.save()

    def _start(self, vm: QemuVm, gen: int, spec: GuestSpec, after_stop: bool) -> None:
        try:
            if after_stop:  # a start right after a power-off: the old process must be gone first
                deadline = time.monotonic() + shutdown_timeout() + 15
                while vm.alive() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if vm.alive():
                    vm.kill()
            if vm.generation != gen or vm.destroyed:
                return
            self._prepare(vm, spec)
            pid = qemu_pid_for(vm.dir)
            if pid is not None:  # never two QEMUs on one overlay: adopt the one that runs
                vm.proc, vm.pid = None, pid
            elif not self._launch(vm, gen):
                return
        except Exception as exc:
            with self._lock:
                if vm.generation != gen or vm.destroyed:
                    return  # destroyed (or booted again) while starting: nothing to report
                vm.state = FAILED
            log.exception("qemu guest %s: could not start", vm.name)
            self._fire("failed", vm.vm_id, "QemuStartFailed", f"The QEMU guest could not start: {exc}")
            return
        self._watch(vm, gen)

    def _launch(self, vm: QemuVm, gen: int) -> bool:
        """Start QEMU unless the VM was destroyed or booted again meanwhile (then destroy cannot miss it)."""
        with contextlib.suppress(FileNotFoundError):
            (vm.dir / "qemu.pid").unlink()
        for name in ("qmp.sock", "qga.sock"):
            with contextlib.suppress(FileNotFoundError):
                (vm.dir / name).unlink()
        cmd = qemu_command(vm.dir, vm.disk, address=vm.address, ssh_port=self.ssh_port,
                           seed=vm.seed if vm.seeded else None)
        with self._lock, open(vm.dir / "qemu.log", "ab") as errlog:
            if vm.generation != gen or vm.destroyed:
                return False
            vm.proc = subprocess.Popen(cmd, cwd=vm.dir, stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog,
                                       start_new_session=True)  # survives a crashed emulator, for adoption
            vm.pid = vm.proc.pid
        vm.started_at = time.monotonic()
        log.info("qemu guest %s: started pid %d (ssh %s:%d)", vm.name, vm.pid, vm.address, self.ssh_port)
        return True

    def _probe(self, vm: QemuVm) -> bool:
        if vm.address:
            return ssh_banner(vm.address, self.ssh_port)
        if not vm.qga_lock.acquire(timeout=0.1):
            return False
        try:
            return qga.ping(vm.sock("qga.sock"), timeout=2.0)
        finally:
            vm.qga_lock.release()

    def _stalled(self, vm: QemuVm, watch: dict[str, float]) -> str | None:
        """Why this not-yet-booted guest looks stuck (kernel lockup, silent console), or None."""
        console = vm.dir / "console.log"
        try:
            size = console.stat().st_size
        except OSError:
            return None
        now = time.monotonic()
        if size != watch.get("size"):
            watch["size"], watch["changed"] = size, now
            start = max(int(watch.get("offset", 0)), int(watch.get("scanned", 0)), size - 65536)
            watch["scanned"] = size  # each byte this boot wrote is looked at once, however fast it came
            with contextlib.suppress(OSError):
                with console.open("rb") as f:
                    f.seek(start)
                    fresh = f.read(size - start).decode(errors="replace")
                if any(mark in fresh for mark in LOCKUP_MARKS):
                    return "the kernel reported a lockup on the console"
            return None
        limit = stall_seconds()
        if limit > 0 and now - watch.get("changed", now) > limit:
            return f"the console was silent for {limit:g} s"
        return None

    def _watch(self, vm: QemuVm, gen: int) -> None:
        """Follow one boot of the machine until its QEMU exits (or the VM is destroyed or booted again)."""
        started = time.monotonic()
        timed_out = False
        watch: dict[str, float] = {"changed": started}
        resets = 0
        while True:
            if vm.generation != gen or vm.destroyed:
                return
            code = vm.exit_code()
            if code is not None:
                vm._reap()
                with self._lock:
                    if vm.generation != gen or vm.destroyed:
                        return
                    was = vm.state
                    early = not vm.booted and code not in (0, -1) and was == STARTING
                    vm.state = FAILED if early else STOPPED
                    vm.proc, vm.pid = None, None
                if early:
                    log.warning("qemu guest %s: QEMU exited with %s while starting", vm.name, code)
                    self._fire("failed", vm.vm_id, "QemuStartFailed",
                               f"QEMU exited with code {code} while starting: {vm.console_tail()}")
                else:
                    log.info("qemu guest %s: QEMU exited (%s); stopped", vm.name, code)
                    self._fire("stopped", vm.vm_id)
                return
            if not vm.booted and vm.state in (STARTING, RUNNING):
                if self._probe(vm):
                    with self._lock:
                        if vm.generation != gen or vm.destroyed or vm.state != STARTING:
                            continue
                        vm.booted = True
                        vm.state = RUNNING
                    log.info("qemu guest %s: up after %.1f s", vm.name, time.monotonic() - started)
                    self._fire("booted", vm.vm_id)
                    continue
                why = self._stalled(vm, watch) if resets < MAX_STALL_RESETS and not timed_out else None
                if why is not None:
                    resets += 1
                    log.warning("qemu guest %s: boot stalled (%s); resetting it (%d of %d). %s", vm.name, why,
                                resets, MAX_STALL_RESETS, vm.console_tail(3))
                    with contextlib.suppress(Exception):
                        qmp.run(vm.sock("qmp.sock"), "system_reset", timeout=5)
                    with contextlib.suppress(OSError):
                        size = (vm.dir / "console.log").stat().st_size
                        watch = {"changed": time.monotonic(), "offset": size, "scanned": size}
                if not timed_out and time.monotonic() - started > boot_timeout():
                    timed_out = True
                    self._fire("failed", vm.vm_id, "OSProvisioningTimedOut",
                               f"OS Provisioning for VM '{vm.name}' did not finish in the allotted time "
                               f"({boot_timeout():g} s without SSH). {vm.console_tail(5)}")
            time.sleep(POLL)

    # power off ------------------------------------------------------------------------------------------
    def shutdown(self, vm_id: str, *, force: bool = False) -> None:
        """ACPI power button, QMP quit after ``shutdown_timeout()`` (at once with ``force``); ``stopped`` follows."""
        vm = self._vm(vm_id)
        with self._lock:
            if vm is None or not vm.alive():
                if vm is not None and not vm.destroyed:
                    vm.state = STOPPED
                self._fire("stopped", vm_id)
                return
            if vm.state == STOPPING and not force:
                return
            vm.state = STOPPING
            gen = vm.generation
        self._thread(self._power_off, vm, gen, force, name=f"qemu-poweroff-{vm.name}")

    def _power_off(self, vm: QemuVm, gen: int, force: bool) -> None:
        if not force:
            try:
                qmp.run(vm.sock("qmp.sock"), "system_powerdown")
            except Exception as exc:
                log.warning("qemu guest %s: system_powerdown failed (%s); forcing", vm.name, exc)
            else:
                deadline = time.monotonic() + shutdown_timeout()
                while vm.alive() and vm.generation == gen and time.monotonic() < deadline:
                    time.sleep(0.2)
        if vm.generation == gen and vm.alive():
            log.info("qemu guest %s: forcing power off", vm.name)
            vm.kill()  # the watcher sees the exit and fires stopped

    def destroy(self, vm_id: str) -> None:
        """Kill QEMU if it runs and delete the VM's directory (overlay, seed, sockets, logs). Idempotent."""
        key = vm_key(vm_id)
        with self._lock:
            vm = self.vms.pop(key, None)
            if vm is None:
                vm = QemuVm(vm_id, self.root / key)
                vm.pid = qemu_pid_for(vm.dir)
            vm.destroyed = True
            vm.generation += 1
        if vm.pid is None and vm.proc is None:
            vm.pid = qemu_pid_for(vm.dir)
        vm.kill()
        vm.close_dir()
        shutil.rmtree(vm.dir, ignore_errors=True)
        log.info("qemu guest %s: destroyed", vm.name)

    # disks ------------------------------------------------------------------------------------------------
    def capture(self, vm_id: str) -> dict[str, Any]:
        """The stopped machine's disk as a new fixed VHD (Azure's format) under ``<state>/disks``."""
        vm = self._vm(vm_id)
        if vm is None or not vm.overlay.exists():
            raise KeyError(f"no QEMU guest for VM {vm_id}")
        if vm.alive():
            raise RuntimeError(f"cannot capture the disk of VM {vm.name} while its guest is {vm.state}")
        self.disks_dir.mkdir(parents=True, exist_ok=True)
        target = self.disks_dir / f"{uuid.uuid4()}.vhd"
        partial = target.with_name(target.name + ".part")
        try:
            subprocess.run([tool("qemu-img"), "convert", "-q", "-f", "qcow2", "-O", "vpc",
                            "-o", "subformat=fixed,force_size=on", str(vm.overlay), str(partial)],
                           check=True, capture_output=True, timeout=600)
            from emulator.storage.vhd import check_fixed

            check_fixed(partial)
            partial.replace(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        descriptor = {"kind": "file", "path": str(target), "format": "vpc"}
        for k in ("kernel", "initrd", "root_uuid", "cmdline", "version"):
            if k in vm.disk:
                descriptor[k] = vm.disk[k]
        log.info("qemu guest %s: captured to %s", vm.name, target)
        return descriptor

    def release_disk(self, disk: dict[str, Any]) -> None:
        """Delete a captured disk; only files this runtime wrote under ``<state>/disks`` (never base images)."""
        if disk.get("kind") != "file" or not disk.get("path"):
            return
        path = Path(disk["path"]).resolve()
        if path.parent != self.disks_dir.resolve():
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # run command --------------------------------------------------------------------------------------
    def run_command(self, vm_id: str, script: list[str], timeout: float) -> RunResult:
        """Run the script as root through the guest agent (guest-exec), waiting up to ``timeout``."""
        vm = self._vm(vm_id)
        if vm is None or not vm.alive() or vm.state not in (STARTING, RUNNING):
            raise GuestNotRunning(f"The VM '{vm_id.rsplit('/', 1)[-1]}' has no running guest.")
        deadline = time.monotonic() + timeout
        if not vm.qga_lock.acquire(timeout=timeout):
            raise TimeoutError("another command holds the guest agent")
        try:
            agent_deadline = min(deadline, time.monotonic() + 120)  # the agent may not be up yet right after boot
            while True:
                try:
                    with qga.QgaClient(vm.sock("qga.sock"), timeout=5.0) as agent:
                        return agent.exec("\n".join(script), timeout=max(1.0, deadline - time.monotonic()))
                except qga.QgaError as exc:
                    if not vm.alive():
                        raise GuestNotRunning(f"The VM '{vm.name}' stopped while the script ran.") from None
                    if time.monotonic() + 2 > agent_deadline:
                        raise GuestNotRunning(f"The guest agent of VM '{vm.name}' does not answer: {exc}") from None
                    time.sleep(2)
        finally:
            vm.qga_lock.release()

    def is_running(self, vm_id: str) -> bool:
        vm = self._vm(vm_id)
        return vm is not None and vm.state in (STARTING, RUNNING) and vm.alive()

    # restarts ---------------------------------------------------------------------------------------------
    def recover(self, vm_ids: dict[str, GuestSpec]) -> None:
        """Adopt the QEMUs of VMs ARM says run (or start them again); stop live QEMUs of any other VM."""
        wanted = {vm_key(v): v for v in vm_ids}
        for vm_id, spec in vm_ids.items():
            vm = self._vm(vm_id, create=True)
            assert vm is not None
            with self._lock:
                if vm.alive() and vm.state in (STARTING, RUNNING):
                    if vm.state == RUNNING:
                        self._fire("booted", vm.vm_id)
                    continue
                pid = qemu_pid_for(vm.dir)
                if pid is None:
                    adopt = False
                else:
                    adopt = True
                    vm.proc, vm.pid = None, pid
                    vm.generation += 1
                    vm.state = STARTING
                    vm.booted = False
                    gen = vm.generation
            if adopt:
                log.info("qemu guest %s: adopted running QEMU pid %d", vm.name, pid)
                self._thread(self._watch, vm, gen, name=f"qemu-watch-{vm.name}")
            else:
                self.boot(spec)
        if self.root.is_dir():  # QEMUs of VMs ARM no longer runs: stop them, never leave an orphan
            for vm_dir in self.root.iterdir():
                if vm_dir.name in wanted or not vm_dir.is_dir():
                    continue
                pid = qemu_pid_for(vm_dir)
                if pid is not None:
                    log.warning("qemu guest dir %s: stopping QEMU pid %d that no running VM owns", vm_dir.name, pid)
                    stray = QemuVm(vm_dir.name, vm_dir)
                    stray.pid = pid
                    stray.kill()
                    stray.close_dir()

    # lifecycle -------------------------------------------------------------------------------------------
    def close(self, *, stop_guests: bool | None = None) -> None:
        """Emulator shutdown: power guests off (default) or leave them for the next emulator to adopt."""
        if stop_guests is None:
            stop_guests = os.environ.get("LOCAL_AZURE_QEMU_ON_EXIT", "stop").strip().lower() != "keep"
        self._closing = True
        with self._lock:
            vms = list(self.vms.values())
        if not stop_guests:
            for vm in vms:
                vm.generation += 1  # watchers end; the processes stay
            return
        live = [vm for vm in vms if vm.alive()]
        for vm in live:
            with contextlib.suppress(Exception):
                qmp.run(vm.sock("qmp.sock"), "system_powerdown", timeout=3)
        deadline = time.monotonic() + CLOSE_GRACE
        while any(vm.alive() for vm in live) and time.monotonic() < deadline:
            time.sleep(0.2)
        for vm in live:
            vm.generation += 1
            vm.kill()
        for vm in vms:
            vm.close_dir()

    def live_pids(self) -> list[int]:
        """Pids of every QEMU running a VM under this state dir (tests assert none remain)."""
        if not self.root.is_dir():
            return []
        return [pid for d in self.root.iterdir() if d.is_dir() and (pid := qemu_pid_for(d)) is not None]


def base_disk(image: BaseImage) -> dict[str, Any]:
    """The disk descriptor of a base image from ``image.build_base_image`` (what the catalogue hands boot)."""
    return {"kind": "file", "path": str(image.qcow2), "format": "qcow2", "kernel": str(image.kernel),
            "initrd": str(image.initrd), "root_uuid": image.root_uuid, "cmdline": image.cmdline,
            "version": image.version}


def runtime_for(ctx: Context) -> QemuRuntime:
    """The emulator's QEMU runtime (``ctx.extras["qemu_guests"]``), created on first use."""
    rt = ctx.extras.get("qemu_guests")
    if isinstance(rt, QemuRuntime):
        return rt
    rt = QemuRuntime(None, ctx)
    ctx.extras["qemu_guests"] = rt
    return rt


class QemuLifecycle:
    """LIFECYCLE hook: guests are powered off (or kept, see ``close``) when the emulator stops."""

    async def startup(self, ctx: Context) -> None:
        runtime_for(ctx)

    async def shutdown(self, ctx: Context) -> None:
        import asyncio

        rt = ctx.extras.get("qemu_guests")
        if isinstance(rt, QemuRuntime):
            await asyncio.get_running_loop().run_in_executor(None, rt.close)


lifecycle = QemuLifecycle()

if TYPE_CHECKING:  # mypy checks that the runtime satisfies compute's protocol
    def _conforms(rt: QemuRuntime) -> GuestRuntime:
        return rt
