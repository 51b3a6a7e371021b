"""An emulator restart neither orphans nor duplicates QEMU processes (real guest, through the SDK).

One Debian VM from the Marketplace, two restarts of the local Azure around it:
- ``LOCAL_AZURE_QEMU_ON_EXIT=keep``: the guest outlives the emulator and the next one adopts
  the very same QEMU process (same PID, same boot, one process on the VM's overlay);
- the default (``stop``): the emulator powers the guest off on exit (no orphan), and the next one
  starts it again because ARM still has the VM running: a new QEMU, a new boot, the same disk.
Deleting the VM then ends its QEMU and deletes its overlay and managed disk.
Processes are only ever looked up by their exact PID or read from /proc, never matched to kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import azure.mgmt.compute.models as cm
import pytest

from emulator.guests.qemu.image import build_base_image
from emulator.guests.qemu.runtime import pid_alive, qemu_pid_for, vm_key
from tests.e2e.test_qemu_golden_cycle import Ssh, keypair, network, power_state, vm_body
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.guests("qemu")]

LOCATION = "westeurope"
ADMIN = "restart"
ON_EXIT = "LOCAL_AZURE_QEMU_ON_EXIT"
EMULATOR_STOP = 120.0  # real seconds: powering a TCG guest off on exit may take a while under load


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[LocalAzure]:
    build_base_image(refresh=False, log=lambda _m: None)
    la = LocalAzure(tmp_path / "state", env={"LOCAL_AZURE_LINUX_RUNTIME": "qemu", ON_EXIT: "keep"})
    la.start(timeout=60)
    try:
        yield la
    finally:
        leave_nothing_running(la)


def leave_nothing_running(la: LocalAzure) -> None:
    """Whatever the test left: an emulator that powers guests off deletes the groups, stops, and any
    QEMU still on one of this state dir's overlays is killed by its exact PID."""
    la.env[ON_EXIT] = "stop"
    try:
        la.stop(timeout=EMULATOR_STOP)
        la.start(timeout=60)
        arm = la.hook("qemu_restart_cleanup")
        for group in arm.resources.resource_groups.list():
            arm.resources.resource_groups.begin_delete(group.name).result()
    finally:
        la.stop(timeout=EMULATOR_STOP)
        guests = la.state_dir / "guests"
        for vm_dir in guests.iterdir() if guests.is_dir() else []:
            pid = qemu_pid_for(vm_dir)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def qemu_processes_on(overlay: Path) -> list[int]:
    """PIDs of every QEMU whose command line names this overlay (read from /proc, all users' processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            args
            and b"qemu-system" in Path(args[0].decode(errors="replace")).name.encode()
            and any(str(overlay).encode() in a for a in args)
            and pid_alive(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


def the_qemu_of(vm_dir: Path) -> int:
    """The one QEMU running the VM: its pidfile names it, and it is the only process on the overlay."""
    pid = qemu_pid_for(vm_dir)
    assert pid is not None, f"no live QEMU in {vm_dir / 'qemu.pid'}"
    assert qemu_processes_on(vm_dir / "overlay.qcow2") == [pid]
    return pid


def wait_until_gone(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)


def boot_id(ssh: Ssh) -> str:
    code, out = ssh.run("cat /proc/sys/kernel/random/boot_id")
    assert code == 0 and out.strip(), out
    return out.strip()


def test_restarts_adopt_or_restart_the_guest_and_delete_leaves_nothing(emu: LocalAzure) -> None:
    arm = emu.hook("qemu_restart")
    group = f"restart-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(group, {"location": LOCATION})
    key, pub = keypair()
    nic, address = network(arm, group, LOCATION, "restart")
    image = cm.ImageReference(publisher="Debian", offer="debian-12", sku="12-gen2", version="latest")
    body = vm_body(LOCATION, nic, image, ADMIN, pub, "restart-vm")
    body.storage_profile.os_disk.delete_option = "Delete"
    vm = arm.compute.virtual_machines.begin_create_or_update(group, "restart-vm", body).result()
    vm_dir = emu.state_dir / "guests" / vm_key(vm.id)

    ssh = Ssh(address, ADMIN, key)
    host_key, first_boot = ssh.host_key, boot_id(ssh)
    ssh.close()
    pid = the_qemu_of(vm_dir)

    # 1. keep: the next emulator adopts the running QEMU; the guest never noticed
    emu.stop(timeout=EMULATOR_STOP)
    assert pid_alive(pid), "with LOCAL_AZURE_QEMU_ON_EXIT=keep the guest must outlive the emulator"
    emu.env[ON_EXIT] = "stop"  # the next emulator powers its guests off when it exits (the default)
    emu.start(timeout=60)
    arm = emu.hook("qemu_restart")
    assert the_qemu_of(vm_dir) == pid, "the restarted emulator must adopt the QEMU, not start a second one"
    assert power_state(arm, group, "restart-vm") == "PowerState/running"
    ssh = Ssh(address, ADMIN, key)
    assert ssh.host_key == host_key
    assert boot_id(ssh) == first_boot, "adopted: the same boot of the same machine"
    ssh.close()
    assert the_qemu_of(vm_dir) == pid

    # 2. stop (the default): the guest is powered off with the emulator, and ARM's running VM starts again
    emu.stop(timeout=EMULATOR_STOP)
    wait_until_gone(pid)
    assert not pid_alive(pid), "the emulator's exit must power its guests off, not orphan them"
    assert qemu_processes_on(vm_dir / "overlay.qcow2") == []
    emu.start(timeout=60)
    arm = emu.hook("qemu_restart")
    assert power_state(arm, group, "restart-vm") == "PowerState/running"
    ssh = Ssh(address, ADMIN, key)
    assert ssh.host_key == host_key, "the same disk: a restart is a reboot, not a new machine"
    assert boot_id(ssh) != first_boot, "powered off on exit, so the guest booted again"
    ssh.close()
    new_pid = the_qemu_of(vm_dir)
    assert new_pid != pid

    # 3. delete: its QEMU ends, its overlay and its OS disk go
    arm.compute.virtual_machines.begin_delete(group, "restart-vm").result()
    wait_until_gone(new_pid)
    assert not pid_alive(new_pid)
    assert qemu_processes_on(vm_dir / "overlay.qcow2") == []
    assert not vm_dir.exists()
    assert list(arm.compute.disks.list_by_resource_group(group)) == []
    arm.resources.resource_groups.begin_delete(group).result()
