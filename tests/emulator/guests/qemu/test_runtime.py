"""The QEMU runtime end to end on real Debian guests (two boots, ~3-4 minutes under TCG).

Driven directly (no ARM), with a recording events sink and the emulator's asyncio loop in
ctx.extras: boot a generalized VM from the base image, SSH in with the key from its osProfile,
Run Command through the guest agent, deprovision + shut down from inside (``stopped`` must
follow), capture a fixed VHD, boot a second VM from it as another user, and check that the
identity is new. Nothing is left behind: no QEMU process, no VM directory, no captured disk.
Timings are printed (``-s``) and written to ``$LOCAL_AZURE_QEMU_TIMINGS`` when set.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
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
from emulator.guests.qemu.tools import RUNTIME_TOOLS, missing_packages
from tests.emulator.guests.qemu.test_runtime_units import Recorder

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.guests("qemu")]

RG = "/subscriptions/5f1c7e38-6b7a-4d1e-9a3c-0d1b2c3d4e5f/resourceGroups/rt-test/providers/Microsoft.Compute"


def keypair(comment: str) -> tuple[Any, str]:
    """A fresh ed25519 key: (paramiko key, OpenSSH public key line)."""
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), f"{pub} {comment}"


class Ssh:
    def __init__(self, address: str, port: int, user: str, key: Any) -> None:
        import paramiko

        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self.client.connect(address, port=port, username=user, pkey=key, look_for_keys=False, allow_agent=False,
                            timeout=30, banner_timeout=60, auth_timeout=30)
        transport = self.client.get_transport()
        assert transport is not None
        self.host_key = transport.get_remote_server_key().get_base64()

    def run(self, command: str, timeout: float = 120) -> tuple[int, str, str]:
        _, out, err = self.client.exec_command(command, timeout=timeout)
        code = out.channel.recv_exit_status()
        return code, out.read().decode(), err.read().decode()

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def base_image() -> Any:
    missing = missing_packages(RUNTIME_TOOLS)
    if missing:
        pytest.skip(f"QEMU guests need: apt-get install {' '.join(missing)}")
    from emulator.guests.qemu.image import build_base_image, default_cache_dir

    return build_base_image(default_cache_dir(), refresh=False)  # the cached image; builds once if none


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[qr.QemuRuntime, Recorder, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ctx = Context(store=Store(str(tmp_path / "state.db")), state_dir=str(tmp_path / "state"))
    ctx.extras["loop"] = loop
    events = Recorder()
    rt = qr.QemuRuntime(events, ctx)
    try:
        yield rt, events, loop
    finally:
        for vm_dir in list(rt.root.iterdir()) if rt.root.is_dir() else []:
            meta = json.loads((vm_dir / "vm.json").read_text()) if (vm_dir / "vm.json").exists() else {}
            rt.destroy(meta.get("vm_id", vm_dir.name))
        rt.close(stop_guests=True)
        leftover = rt.live_pids()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        assert leftover == [], f"QEMU processes left behind: {leftover}"


def _address() -> str:
    n = os.getpid() % 60000 + 2
    return f"127.99.{n // 250}.{n % 250 + 2}"


def test_boot_ssh_run_command_deprovision_capture_and_boot_from_the_capture(
    base_image: Any, runtime: tuple[qr.QemuRuntime, Recorder, asyncio.AbstractEventLoop]
) -> None:
    rt, events, loop = runtime
    times: dict[str, float] = {}
    disk = {"kind": "file", "path": str(base_image.qcow2), "format": "qcow2", "kernel": str(base_image.kernel),
            "initrd": str(base_image.initrd), "root_uuid": base_image.root_uuid, "cmdline": base_image.cmdline}
    base_bytes = base_image.qcow2.stat().st_mtime_ns
    key1, pub1 = keypair("builder@test")
    key2, pub2 = keypair("smoke@test")
    vm1, vm2 = f"{RG}/virtualMachines/build-vm", f"{RG}/virtualMachines/smoke-vm"
    addr1 = _address()
    addr2 = addr1.rsplit(".", 1)[0] + "." + str(int(addr1.rsplit(".", 1)[1]) + 1)
    port = rt.ssh_port

    # 1. generalized first boot: osProfile through the NoCloud seed
    t = time.monotonic()
    rt.boot(GuestSpec(vm_id=vm1, os_type="Linux", address=addr1, disk=disk, computer_name="build01",
                      admin_username="builder", ssh_public_keys=[pub1]))
    assert events.wait("booted", 600)[1] == vm1
    times["boot_to_ssh"] = time.monotonic() - t
    assert rt.is_running(vm1)
    ssh = Ssh(addr1, port, "builder", key1)
    host_key1 = ssh.host_key
    assert ssh.run("hostname")[1].strip() == "build01"
    assert ssh.run("id -un")[1].strip() == "builder"
    assert ssh.run("sudo -n true")[0] == 0
    assert ssh.run("echo golden | sudo tee /etc/custom-marker")[0] == 0

    # 2. Run Command through the guest agent, no SSH
    t = time.monotonic()
    result = rt.run_command(vm1, ["echo hi; id -un", "echo err >&2; exit 3"], timeout=120)
    times["run_command"] = time.monotonic() - t
    assert (result.exit_code, result.stdout, result.stderr) == (3, "hi\nroot\n", "err\n")

    # 3. deprovision and shut down from inside: the runtime sees QEMU exit
    t = time.monotonic()
    _, out, _ = ssh.client.exec_command(
        "sudo sh -c 'waagent -deprovision+user -force >/tmp/deprovision.log 2>&1 && echo DEPROVISIONED "
        "&& shutdown -h now'", timeout=120)
    assert out.readline().strip() == "DEPROVISIONED"
    times["deprovision"] = time.monotonic() - t
    t = time.monotonic()
    assert events.wait("stopped", 120)[1] == vm1
    times["shutdown"] = time.monotonic() - t
    ssh.close()
    assert not rt.is_running(vm1)

    # 4. capture: a fixed VHD with a valid footer
    from emulator.storage.vhd import check_fixed

    t = time.monotonic()
    captured = rt.capture(vm1)
    times["capture"] = time.monotonic() - t
    vhd = Path(captured["path"])
    footer = check_fixed(vhd)
    assert footer.disk_type == 2 and vhd.stat().st_size == footer.current_size + 512
    assert footer.current_size % (1024 * 1024) == 0
    assert captured["format"] == "vpc" and captured["root_uuid"] == base_image.root_uuid
    assert vhd.parent == Path(rt.ctx.state_dir) / "disks"

    # 5. a new VM from the captured disk, as another user with another key and name
    t = time.monotonic()
    rt.boot(GuestSpec(vm_id=vm2, os_type="Linux", address=addr2, disk=captured, computer_name="smoke01",
                      admin_username="smoker", ssh_public_keys=[pub2]))
    assert events.wait("booted", 600)[1] == vm2
    times["boot_from_capture_to_ssh"] = time.monotonic() - t
    ssh2 = Ssh(addr2, port, "smoker", key2)
    assert ssh2.run("hostname")[1].strip() == "smoke01"
    assert ssh2.run("sudo -n true")[0] == 0
    assert ssh2.run("id builder")[0] != 0  # deprovision really removed the build user
    assert ssh2.host_key != host_key1  # new host keys
    assert ssh2.run("cat /etc/custom-marker")[1].strip() == "golden"  # the customisation is in the image
    code, status, _ = ssh2.run("cloud-init status --wait", timeout=300)
    assert code == 0 and "done" in status, status
    times["boot_from_capture_to_cloud_init_done"] = time.monotonic() - t
    ssh2.close()

    # 6. power off through the API (ACPI button), then delete both VMs; the loop thread may call destroy
    t = time.monotonic()
    rt.shutdown(vm2)
    assert events.wait("stopped", 180)[1] == vm2
    times["api_shutdown"] = time.monotonic() - t

    async def destroy_all() -> None:
        rt.destroy(vm1)
        rt.destroy(vm2)

    asyncio.run_coroutine_threadsafe(destroy_all(), loop).result(60)
    rt.release_disk(captured)
    assert not vhd.exists() and base_image.qcow2.exists()
    assert base_image.qcow2.stat().st_mtime_ns == base_bytes  # the base image is never written
    assert rt.live_pids() == [] and not any(rt.root.iterdir())

    report = {k: round(v, 1) for k, v in times.items()}
    print("\nQEMU runtime timings (s):", json.dumps(report))
    if os.environ.get("LOCAL_AZURE_QEMU_TIMINGS"):
        Path(os.environ["LOCAL_AZURE_QEMU_TIMINGS"]).write_text(json.dumps(report, indent=1))
