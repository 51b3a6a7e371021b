"""QemuRuntime without a guest OS: command line, start failures, adoption and orphan handling.

A stand-in "QEMU" (a shell renamed qemu-system-x86_64 whose arguments name the VM's overlay)
and a fake sshd banner exercise recover/adopt/kill and the watcher's booted/stopped reporting
in a second; one test starts the real qemu-system-x86_64 with a missing kernel.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.core.context import Context
from emulator.core.store import Store
from emulator.guests.base import GuestSpec
from emulator.guests.qemu import runtime as qr

pytestmark = pytest.mark.guests("qemu")

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/unit-vm"


class Recorder:
    """A GuestEvents sink that remembers what fired."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.cond = threading.Condition()

    def _add(self, *event: Any) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def booted(self, vm_id: str) -> None:
        self._add("booted", vm_id)

    def stopped(self, vm_id: str) -> None:
        self._add("stopped", vm_id)

    def failed(self, vm_id: str, code: str, message: str) -> None:
        self._add("failed", vm_id, code, message)

    def wait(self, name: str, timeout: float) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e[0] == name:
                        self.events.remove(e)
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {name} event within {timeout} s; got {self.events}")
                self.cond.wait(left)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[tuple[qr.QemuRuntime, Recorder]]:
    ctx = Context(store=Store(str(tmp_path / "state.db")), state_dir=str(tmp_path))
    events = Recorder()
    runtime = qr.QemuRuntime(events, ctx, ssh_port=2222)
    try:
        yield runtime, events
    finally:
        runtime.close(stop_guests=True)
        assert runtime.live_pids() == []


def test_command_line_forwards_ssh_and_wires_the_agent(tmp_path: Path) -> None:
    disk = {"kernel": "/k", "initrd": "/i", "root_uuid": "abcd", "cmdline": "root=UUID=abcd ro console=ttyS0 quiet"}
    cmd = qr.qemu_command(tmp_path, disk, address="127.99.0.7", ssh_port=22, seed=tmp_path / "seed.iso")
    line = " ".join(cmd)
    assert "hostfwd=tcp:127.99.0.7:22-:22" in line
    assert cmd[cmd.index("-append") + 1] == "root=UUID=abcd ro console=ttyS0 quiet"
    assert "tcg,thread=multi" in cmd and "-no-reboot" not in cmd  # a guest poweroff ends QEMU, a reboot does not
    assert "name=org.qemu.guest_agent.0" in line and "unix:qmp.sock,server=on,wait=off" in line
    assert f"file={tmp_path / 'seed.iso'},format=raw,media=cdrom,readonly=on" in cmd
    unseeded = qr.qemu_command(tmp_path, disk, address="", ssh_port=22, seed=None)
    assert "media=cdrom" not in " ".join(unseeded) and "hostfwd" not in " ".join(unseeded)


def test_runtime_selection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_AZURE_LINUX_RUNTIME", raising=False)
    assert qr.linux_runtime_name() == "simulated"
    monkeypatch.setenv("LOCAL_AZURE_LINUX_RUNTIME", "QEMU")
    assert qr.linux_runtime_name() == "qemu"
    monkeypatch.setenv("LOCAL_AZURE_LINUX_RUNTIME", "kvm")
    with pytest.raises(ValueError):
        qr.linux_runtime_name()


def test_idle_vm_calls(rt: tuple[qr.QemuRuntime, Recorder], tmp_path: Path) -> None:
    runtime, events = rt
    runtime.shutdown(VM)
    assert events.wait("stopped", 1)[1] == VM
    assert not runtime.is_running(VM)
    runtime.destroy(VM)
    runtime.destroy(VM)
    with pytest.raises(qr.GuestNotRunning):
        runtime.run_command(VM, ["true"], 5)
    outside = tmp_path / "base.qcow2"
    outside.write_bytes(b"x")
    runtime.release_disk({"kind": "file", "path": str(outside), "format": "qcow2"})
    assert outside.exists()  # never a base image, only captured disks
    runtime.disks_dir.mkdir()
    captured = runtime.disks_dir / "c.vhd"
    captured.write_bytes(b"x")
    runtime.release_disk({"kind": "file", "path": str(captured), "format": "vpc"})
    runtime.release_disk({"kind": "file", "path": str(captured), "format": "vpc"})
    assert not captured.exists()


def test_a_windows_or_simulated_disk_is_refused(rt: tuple[qr.QemuRuntime, Recorder]) -> None:
    runtime, events = rt
    with pytest.raises(ValueError):
        runtime.boot(GuestSpec(vm_id=VM, os_type="Windows", address="", disk={"kind": "file"}))
    runtime.boot(GuestSpec(vm_id=VM, os_type="Linux", address="", disk={"kind": "simulated"}))
    assert events.wait("failed", 10)[2] == "QemuStartFailed"


@pytest.mark.skipif(not (shutil.which("qemu-system-x86_64") and shutil.which("qemu-img")), reason="no QEMU")
def test_qemu_that_cannot_start_fails_the_boot(rt: tuple[qr.QemuRuntime, Recorder], tmp_path: Path) -> None:
    runtime, events = rt
    src = tmp_path / "src.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(src), "64M"], check=True)
    before = src.read_bytes()
    disk = {"kind": "file", "path": str(src), "format": "qcow2", "kernel": str(tmp_path / "missing-vmlinuz"),
            "initrd": str(tmp_path / "missing-initrd"), "root_uuid": "0000", "cmdline": ""}
    runtime.boot(GuestSpec(vm_id=VM, os_type="Linux", address="127.99.250.1", disk=disk, computer_name="unit",
                           admin_username="u", ssh_public_keys=["ssh-ed25519 AAAA u"]))
    _, vm_id, code, message = events.wait("failed", 30)
    assert (vm_id, code) == (VM, "QemuStartFailed")
    assert "missing-vmlinuz" in message  # QEMU's own error reaches the ARM error message
    vm_dir = runtime.root / qr.vm_key(VM)
    assert (vm_dir / "overlay.qcow2").exists() and (vm_dir / "seed.iso").exists()
    assert src.read_bytes() == before  # the source disk is never written
    runtime.destroy(VM)
    assert not vm_dir.exists()


class FakeSshd:
    """Answers with an SSH banner on address:port, like the guest's sshd through QEMU's forwarder."""

    def __init__(self, address: str, port: int) -> None:
        self.sock = socket.create_server((address, port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=2)


def _fake_qemu(vm_dir: Path) -> subprocess.Popen[bytes]:
    """A process whose argv[0] is qemu-system-x86_64 and whose arguments name the VM's overlay."""
    vm_dir.mkdir(parents=True, exist_ok=True)
    (vm_dir / "overlay.qcow2").write_bytes(b"")
    proc = subprocess.Popen(["bash", "-c", f"exec -a qemu-system-x86_64 {sys.executable} -c 'import time; time.sleep(60)' "
                             f"-drive file={vm_dir / 'overlay.qcow2'}"], start_new_session=True)
    time.sleep(0.3)
    (vm_dir / "qemu.pid").write_text(f"{proc.pid}\n")
    return proc


def test_recover_adopts_a_running_qemu_and_stops_strays(rt: tuple[qr.QemuRuntime, Recorder]) -> None:
    runtime, events = rt
    other = VM.replace("unit-vm", "gone-vm")
    mine, stray = _fake_qemu(runtime.root / qr.vm_key(VM)), _fake_qemu(runtime.root / qr.vm_key(other))
    sshd = FakeSshd("127.99.250.2", 2222)
    try:
        assert qr.qemu_pid_for(runtime.root / qr.vm_key(VM)) == mine.pid
        spec = GuestSpec(vm_id=VM, os_type="Linux", address="127.99.250.2", disk={"kind": "file"})
        (runtime.root / qr.vm_key(VM) / "vm.json").write_text(
            json.dumps({"vm_id": VM, "address": "127.99.250.2", "disk": {}, "seeded": True}))
        runtime.recover({VM: spec})
        assert stray.wait(10) is not None  # a QEMU no running VM owns is stopped, never orphaned
        assert events.wait("booted", 10)[1] == VM  # adopted: its sshd answers, no second process
        assert mine.poll() is None and runtime.is_running(VM)
        runtime.boot(spec)  # already running: reports booted again, starts nothing
        assert events.wait("booted", 5)[1] == VM
        runtime.shutdown(VM, force=True)
        assert events.wait("stopped", 15)[1] == VM
        assert mine.wait(5) is not None and not runtime.is_running(VM)
    finally:
        sshd.close()
        for p in (mine, stray):
            if p.poll() is None:
                p.kill()
                p.wait()
        runtime.destroy(VM)
        runtime.destroy(other)
    assert not runtime.root.exists() or not any(runtime.root.iterdir())


def test_a_stalled_boot_is_recognised_by_a_lockup_or_a_silent_console(tmp_path, monkeypatch):
    import time as _time
    from types import SimpleNamespace

    from emulator.guests.qemu.runtime import QemuRuntime

    stalled = QemuRuntime._stalled
    console = tmp_path / "console.log"
    vm = SimpleNamespace(dir=tmp_path)
    console.write_text("[    3.1] Run /init as init process\n")
    watch: dict[str, float] = {"changed": _time.monotonic()}
    assert stalled(None, vm, watch) is None  # progress: nothing to do
    with console.open("a") as f:  # the header, then a register dump longer than any fixed tail window
        f.write("[   52.0] watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [udevadm:160]\n")
        f.write("[   52.0] RAX: 0000000000000000 RBX: 0000558f88c0d5a0 RCX: 0000000000000004\n" * 200)  # ~16 KB: more than a 4 KB tail
    assert "lockup" in (stalled(None, vm, watch) or "")
    # after a reset only what the new boot writes counts
    watch = {"changed": _time.monotonic(), "offset": console.stat().st_size}
    with console.open("a") as f:
        f.write("[    2.0] Linux version 6.1.0\n")
    assert stalled(None, vm, watch) is None
    monkeypatch.setenv("LOCAL_AZURE_QEMU_STALL_RESET", "0.05")
    watch["changed"] = _time.monotonic() - 1.0
    assert "silent" in (stalled(None, vm, watch) or "")
    monkeypatch.setenv("LOCAL_AZURE_QEMU_STALL_RESET", "0")
    assert stalled(None, vm, watch) is None  # disabled
