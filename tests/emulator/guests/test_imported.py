"""Imported disks: a fixed VHD of a partitioned Linux disk becomes a disk the guest runtimes boot.

The disks are built for real in the test, without root, loop devices or mounts: a small root
filesystem directory goes into an ext4 partition (sfdisk + ``mkfs.ext4 -d`` at the partition's
offset, as ``qemu.disk.make_disk`` does; ``debugfs -w`` gives the user's home its owner), then
``qemu-img convert`` makes the fixed VHD a user would upload. One MBR disk (a data partition
before the root one) and one GPT disk (a BIOS boot partition first).
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.core.context import Context
from emulator.core.store import Store
from emulator.guests import imported
from emulator.guests.base import GuestSpec
from emulator.guests.qemu.image import cmdline
from emulator.guests.qemu.tools import missing_packages, tool
from emulator.guests.simulated.disk import SIMULATED_NOTE
from emulator.storage import vhd
from tests.emulator.guests.simulated.conftest import (
    Events,
    KeyPair,
    exec_,
    make_keypair,
    make_runtime,
    next_address,
    ssh_client,
    vm_id,
)

pytestmark = pytest.mark.skipif(
    bool(missing_packages({"debugfs": "e2fsprogs", "mkfs.ext4": "e2fsprogs", "sfdisk": "fdisk",
                           "qemu-img": "qemu-utils"})),
    reason="building test disks needs e2fsprogs, fdisk and qemu-utils (./factory install)")

MIB = 1024 * 1024
NEW_KERNEL = b"NEW KERNEL 6.1.0-18\0" + bytes(range(256)) * 64
NEW_INITRD = b"NEW INITRD 6.1.0-18\0" + bytes(range(255, -1, -1)) * 32
BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
STATUS = """\
Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: systemd
Status: install ok installed
Architecture: amd64
Version: 252.22-1~deb12u1

Package: sudo
Status: install ok installed
Architecture: amd64
Version: 1.9.13p3-1+deb12u1

Package: openssh-server
Status: install ok installed
Architecture: amd64
Version: 1:9.2p1-2+deb12u3

Package: nginx
Status: install ok installed
Architecture: amd64
Version: 1.22.1-9

Package: cron
Status: install ok installed
Architecture: amd64
Version: 3.0pl1-162
Description: process scheduling daemon
 cron starts processes at specified times.

Package: oldtool
Status: deinstall ok config-files
Architecture: amd64
Version: 0.9-1

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u7
"""


@dataclass
class Disks:
    mbr: Path
    gpt: Path
    unpartitioned: Path
    ntfs: Path
    root_uuid: str
    user_key: KeyPair
    host_key_pub: str


def _write(root: Path, rel: str, data: str | bytes, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _link(root: Path, rel: str, target: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def make_rootfs(root: Path, user_key: str, host_key: tuple[str, str]) -> None:
    """A Debian 12 as exported from KVM: os-release as a link into /usr/lib, two kernels with initrds and a
    newer one without, the usual systemd links, a user with a key and sudo, a golden-image marker."""
    _write(root, "usr/lib/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
           'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')
    _link(root, "etc/os-release", "../usr/lib/os-release")
    _write(root, "etc/hostname", "onprem-deb01\n")
    _write(root, "etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
    _write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
           "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\ndebian:x:1000:1000:Debian User,,,:/home/debian:/bin/bash\n")
    _write(root, "etc/group", "root:x:0:\ndaemon:x:1:\nsudo:x:27:debian\ndebian:x:1000:\nnogroup:x:65534:\n")
    _write(root, "etc/shadow", "root:*:19800:0:99999:7:::\ndebian:$y$j9T$abc$def:19800:0:99999:7:::\n", 0o640)
    _write(root, "etc/sudoers", "root\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
           0o440)
    _write(root, "etc/sudoers.d/debian", "debian ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    _write(root, "etc/golden-image/release", "image=onprem-debian\nbuilt-by=kvm\n")
    _write(root, "etc/ssh/sshd_config", "PasswordAuthentication no\n")
    _write(root, "etc/ssh/ssh_host_ed25519_key", host_key[0], 0o600)
    _write(root, "etc/ssh/ssh_host_ed25519_key.pub", host_key[1] + "\n")
    _write(root, "etc/big.bin", os.urandom(100 * 1024))  # larger than the simulated guest keeps
    wants = "etc/systemd/system/multi-user.target.wants"
    _link(root, f"{wants}/ssh.service", "/lib/systemd/system/ssh.service")
    _link(root, f"{wants}/nginx.service", "/lib/systemd/system/nginx.service")
    _link(root, "etc/systemd/system/timers.target.wants/apt-daily.timer", "/lib/systemd/system/apt-daily.timer")
    _link(root, "etc/systemd/system/bluetooth.service", "/dev/null")  # masked
    for unit in ("ssh.service", "nginx.service", "cron.service", "apt-daily.timer", "getty@.service",
                 "bluetooth.service"):
        _write(root, f"lib/systemd/system/{unit}", "[Unit]\n")
    _write(root, "var/lib/dpkg/status", STATUS)
    _write(root, "boot/vmlinuz-6.1.0-9-amd64", b"OLD KERNEL")
    _write(root, "boot/initrd.img-6.1.0-9-amd64", b"OLD INITRD")
    _write(root, "boot/vmlinuz-6.1.0-18-amd64", NEW_KERNEL)
    _write(root, "boot/initrd.img-6.1.0-18-amd64", NEW_INITRD)
    _write(root, "boot/vmlinuz-6.1.0-20-amd64", b"NO INITRD FOR ME")  # unbootable without its initrd
    _link(root, "vmlinuz", "boot/vmlinuz-6.1.0-18-amd64")
    _link(root, "initrd.img", "boot/initrd.img-6.1.0-18-amd64")
    _write(root, "home/debian/.bashrc", "# debian's bashrc\n")
    _write(root, "home/debian/.ssh/authorized_keys", user_key + "\n", 0o600)
    (root / "home/debian/.ssh").chmod(0o700)
    (root / "home/debian").chmod(0o750)
    _write(root, "root/.bashrc", "# root's bashrc\n")
    (root / "root").chmod(0o700)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)


def _run(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(list(cmd), input=stdin, check=True, capture_output=True, text=True)


def make_vhd(out: Path, layout: str, parts: list[tuple[int, int, Path | None, str | None]]) -> Path:
    """A 64 MiB disk: sfdisk ``layout`` header + (start sector, sectors, rootfs, fs uuid) partitions; ext4 made in
    each with a rootfs; then a fixed VHD of it."""
    raw = out.with_suffix(".raw")
    with open(raw, "wb") as f:
        f.truncate(64 * MIB)
    _run(tool("sfdisk"), "--quiet", str(raw), stdin=layout)
    for start, sectors, rootfs, fs_uuid in parts:
        if rootfs is None:
            continue
        _run(tool("mkfs.ext4"), "-F", "-q", "-U", str(fs_uuid), "-E", f"offset={start * 512}", "-d", str(rootfs),
             str(raw), f"{sectors // 2}k")
        if (rootfs / "home/debian").exists():  # the user owns their home (mkfs -d copies the builder's uid)
            fixes = [f"sif {p} {field} 1000" for p in ("/home/debian", "/home/debian/.ssh",
                     "/home/debian/.ssh/authorized_keys", "/home/debian/.bashrc") for field in ("uid", "gid")]
            _run(tool("debugfs"), "-w", "-f", "-", f"{raw}?offset={start * 512}", stdin="\n".join(fixes) + "\n")
    _run(tool("qemu-img"), "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(raw),
         str(out))
    raw.unlink()
    vhd.check_fixed(out)
    return out


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    import asyncssh

    work = tmp_path_factory.mktemp("imported-disks")
    user_key = make_keypair(work, "debian-key")
    host = asyncssh.generate_private_key("ssh-ed25519", comment="root@onprem-deb01")
    host_key = (host.export_private_key().decode(), host.export_public_key().decode().strip())
    rootfs, datafs = work / "rootfs", work / "datafs"
    make_rootfs(rootfs, user_key.public, host_key)
    _write(datafs, "data.txt", "not an OS\n")
    root_uuid = str(uuid.uuid4())
    mbr = make_vhd(work / "mbr.vhd", "label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=110592, "
                   "type=83, bootable\n",
                   [(2048, 16384, datafs, str(uuid.uuid4())), (18432, 110592, rootfs, root_uuid)])
    gpt = make_vhd(work / "gpt.vhd", f"label: gpt\nstart=2048, size=2048, type={BIOS_BOOT}\n"
                   f"start=4096, size=110592, type={LINUX_FS}\n",
                   [(2048, 2048, None, None), (4096, 110592, rootfs, root_uuid)])
    ntfs = make_vhd(work / "ntfs.vhd", "label: dos\nstart=2048, type=7\n", [])
    unpartitioned = vhd.write_fixed(work / "blank.vhd", 8 * MIB)
    return Disks(mbr, gpt, unpartitioned, ntfs, root_uuid, user_key, host_key[1])


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    store = Store(str(tmp_path / "state.db"))
    try:
        yield Context(store=store, state_dir=str(tmp_path / "state"))
    finally:
        store.close()


def _simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AZURE_LINUX_RUNTIME", "simulated")


def _qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AZURE_LINUX_RUNTIME", "qemu")


# finding the OS --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("label", "number"), [("mbr", 2), ("gpt", 2)])
def test_the_root_filesystem_is_found_behind_other_partitions(disks: Disks, label: str, number: int) -> None:
    root = imported.find_root(getattr(disks, label))
    assert root is not None
    assert (root.uuid, root.partition.number, root.partition.scheme) == (disks.root_uuid, number, label)


# QEMU --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["mbr", "gpt"])
def test_qemu_descriptor_boots_the_newest_kernel_with_an_initrd(disks: Disks, ctx: Context, label: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _qemu(monkeypatch)
    path = getattr(disks, label)
    d = imported.descriptor_for(ctx, path, os_type="Linux")
    assert {k: d[k] for k in ("kind", "format", "path", "root_uuid", "cmdline")} == {
        "kind": "file", "format": "vpc", "path": str(path), "root_uuid": disks.root_uuid,
        "cmdline": cmdline(disks.root_uuid)}
    kernel, initrd = Path(d["kernel"]), Path(d["initrd"])
    assert kernel.read_bytes() == NEW_KERNEL and initrd.read_bytes() == NEW_INITRD  # 6.1.0-20 has no initrd
    cache = Path(ctx.state_dir) / imported.BOOT_CACHE
    assert kernel.parent == cache and initrd.parent == cache
    assert stat.S_IMODE(kernel.stat().st_mode) == 0o644 and stat.S_IMODE(initrd.stat().st_mode) == 0o644
    # content-addressed: another descriptor with the same kernel shares the files; nothing else is left there
    again = imported.descriptor_for(ctx, disks.gpt if label == "mbr" else disks.mbr, os_type="Linux")
    assert (again["kernel"], again["initrd"]) == (d["kernel"], d["initrd"])
    assert sorted(p.name for p in cache.iterdir()) == sorted([kernel.name, initrd.name])


# simulated ---------------------------------------------------------------------------------------------------
def test_simulated_descriptor_holds_the_facts_on_the_disk(disks: Disks, ctx: Context,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _simulated(monkeypatch)
    d = imported.descriptor_for(ctx, disks.gpt, os_type="Linux")
    assert d["kind"] == "simulated" and d["path"] == str(disks.gpt)
    os_ = d["os"]
    assert os_["family"] == "linux" and os_["simulated"] is True and os_["image"] == "debian-12"
    assert os_["release"]["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert os_["release"]["VERSION_CODENAME"] == "bookworm"
    release = os_["files"]["/etc/os-release"]["data"]
    assert release.startswith(f"# {SIMULATED_NOTE}\n") and 'VERSION_ID="12"' in release
    files = os_["files"]
    assert files["/etc/hostname"]["data"] == "onprem-deb01\n"
    assert files["/etc/machine-id"]["data"] == "0123456789abcdef0123456789abcdef\n"
    assert files["/etc/golden-image/release"]["data"] == "image=onprem-debian\nbuilt-by=kvm\n"
    assert files["/etc/ssh/ssh_host_ed25519_key.pub"]["data"] == disks.host_key_pub + "\n"
    assert files["/etc/ssh/ssh_host_ed25519_key"]["mode"] == 0o600
    assert files["/etc/sudoers.d/debian"]["data"] == "debian ALL=(ALL) NOPASSWD:ALL\n"
    assert files["/home/debian/.ssh/authorized_keys"] == {"data": disks.user_key.public + "\n", "mode": 0o600,
                                                          "owner": "debian"}
    assert files["/root/.bashrc"]["data"] == "# root's bashrc\n"
    assert "/etc/big.bin" not in files and os_["imported"]["files_left_out"] == 1
    assert "/etc/passwd" not in files  # the simulated guest derives passwd, group and shadow from users
    assert os_["dirs"]["/home/debian"] == {"mode": 0o750, "owner": "debian"}
    assert os_["dirs"]["/tmp"]["mode"] == 0o1777
    assert os_["users"]["debian"] == {"uid": 1000, "gid": 1000, "gecos": "Debian User,,,", "home": "/home/debian",
                                      "shell": "/bin/bash", "groups": ["debian", "sudo"], "password": "$y$j9T$abc$def"}
    assert set(os_["users"]) == {"root", "daemon", "sshd", "debian"}
    assert os_["packages"] == {"dpkg": "1.21.22", "systemd": "252.22-1~deb12u1", "sudo": "1.9.13p3-1+deb12u1",
                               "openssh-server": "1:9.2p1-2+deb12u3", "nginx": "1.22.1-9", "cron": "3.0pl1-162",
                               "libc6:i386": "2.36-9+deb12u7"}  # oldtool was removed (config files only)
    services = os_["services"]
    assert services["ssh"] == services["nginx"] == services["apt-daily.timer"] == {"enabled": True, "active": False}
    assert services["cron"] == {"enabled": False, "active": False}
    assert services["bluetooth"]["masked"] is True and not services["bluetooth"]["enabled"]
    assert not any("@" in s for s in services)
    assert os_["imported"] == {"from": "gpt.vhd", "partition": 2, "scheme": "gpt", "root_uuid": disks.root_uuid,
                               "files_left_out": 1}


def test_a_simulated_vm_from_the_disk_is_the_disk_s_machine(disks: Disks, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Specialized boot (no osProfile): the disk keeps its identity, user, key, host key and packages."""
    _simulated(monkeypatch)
    events = Events()
    rt = make_runtime(tmp_path, events)
    rt.start()
    try:
        d = imported.descriptor_for(rt.ctx, disks.mbr, os_type="Linux")
        spec = GuestSpec(vm_id=vm_id("imported-vm"), os_type="Linux", address=next_address(), disk=d)
        rt.boot(spec)
        events.wait("booted", spec.vm_id)
        client = ssh_client(spec.address, "debian", disks.user_key)
        try:
            transport = client.get_transport()
            assert transport is not None
            assert transport.get_remote_server_key().get_base64() == disks.host_key_pub.split()[1]
            assert exec_(client, "hostname") == (0, "onprem-deb01\n", "")
            assert exec_(client, "dpkg-query -W -f='${Package} ${Version}\\n' nginx openssh-server")[1] == \
                "nginx 1.22.1-9\nopenssh-server 1:9.2p1-2+deb12u3\n"
            assert exec_(client, "systemctl is-enabled nginx")[1].strip() == "enabled"
            assert exec_(client, "systemctl is-enabled cron")[1].strip() == "disabled"
            assert exec_(client, "cat /etc/golden-image/release")[1] == "image=onprem-debian\nbuilt-by=kvm\n"
            assert exec_(client, "cat /etc/machine-id")[1] == "0123456789abcdef0123456789abcdef\n"
            assert exec_(client, "sudo -n id -un")[1] == "root\n"
            assert "simulated" in exec_(client, "uname -a")[1]  # it says it is not a real machine
        finally:
            client.close()
    finally:
        rt.close()


# no OS on the disk -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", ["simulated", "qemu"])
@pytest.mark.parametrize("which", ["unpartitioned", "ntfs"])
def test_a_disk_without_linux_stays_a_plain_vhd(disks: Disks, ctx: Context, monkeypatch: pytest.MonkeyPatch,
                                                runtime: str, which: str) -> None:
    monkeypatch.setenv("LOCAL_AZURE_LINUX_RUNTIME", runtime)
    path = getattr(disks, which)
    assert imported.descriptor_for(ctx, path, os_type="Linux") == {"kind": "vhd", "path": str(path)}


def test_windows_and_unreadable_disks_stay_plain_vhds(disks: Disks, ctx: Context, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    _simulated(monkeypatch)
    assert imported.descriptor_for(ctx, disks.mbr, os_type="Windows") == {"kind": "vhd", "path": str(disks.mbr)}
    broken = tmp_path / "broken.vhd"
    broken.write_bytes(b"\0" * 4096)  # no footer
    with caplog.at_level("WARNING", logger="emulator.guests.imported"):
        assert imported.descriptor_for(ctx, broken, os_type="Linux") == {"kind": "vhd", "path": str(broken)}
    assert "broken.vhd could not be read" in caplog.text


def _recorder() -> Any:
    from tests.emulator.guests.qemu.test_runtime_units import Recorder

    return Recorder()


def test_booting_a_plain_vhd_fails_on_the_vm_in_either_runtime(disks: Disks, tmp_path: Path) -> None:
    from emulator.guests.qemu.runtime import QemuRuntime

    spec = GuestSpec(vm_id=vm_id("blank-vm"), os_type="Linux", address=next_address(),
                     disk={"kind": "vhd", "path": str(disks.unpartitioned)})
    events = Events()
    (tmp_path / "sim").mkdir()
    rt = make_runtime(tmp_path / "sim", events)
    rt.start()
    try:
        rt.boot(spec)
        _, _, code, message = events.wait("failed", spec.vm_id)
    finally:
        rt.close()
    assert code == "OSProvisioningClientError"
    assert message == (
        "OS Provisioning for VM 'blank-vm' failed: no bootable operating system was found on its OS disk (blank.vhd): "
        "no partition (MBR or GPT) holds a Linux root filesystem (ext2/3/4). Boot diagnostics: 'No bootable "
        "device.' Upload a fixed VHD of the whole disk, partition table included.")
    assert rt.find("blank-vm") == []  # no guest was made for it

    recorder = _recorder()
    (tmp_path / "q").mkdir()
    qemu = QemuRuntime(recorder, Context(store=Store(str(tmp_path / "q" / "state.db")), state_dir=str(tmp_path / "q")))
    try:
        qemu.boot(spec)
        assert recorder.wait("failed", 5) == ("failed", spec.vm_id, code, message)
        assert qemu.live_pids() == [] and not qemu.is_running(spec.vm_id)
    finally:
        qemu.close(stop_guests=True)


def test_a_vm_from_a_version_of_a_blank_vhd_fails_with_the_boot_error(arm: Any, group: str, location: str,
                                                                      local_azure: Any, disks: Disks) -> None:
    """Through the real SDK: the gallery version of a VHD without an OS is created; the VM from it fails."""
    from azure.core.exceptions import HttpResponseError

    from tests.emulator.services.compute.conftest import Kit
    from tests.emulator.services.gallery.conftest import definition_body, unique, upload, vhd_version_body

    kit = Kit(arm, group, location, disks.user_key.public)
    gallery = unique("gal")
    arm.compute.galleries.begin_create_or_update(group, gallery, {"location": location}).result()
    arm.compute.gallery_images.begin_create_or_update(group, gallery, "onprem", definition_body(location)).result()
    url = upload(local_azure, disks.unpartitioned, name=f"{unique('blank')}.vhd")
    version = arm.compute.gallery_image_versions.begin_create_or_update(
        group, gallery, "onprem", "1.0.0", vhd_version_body(location, url)).result()
    assert version.provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as err:
        kit.linux_vm("fromblank", image={"id": version.id})
    error = err.value.error
    assert error is not None and error.code == "OSProvisioningClientError"
    assert str(error.message).startswith("OS Provisioning for VM 'fromblank' failed: no bootable operating system "
                                         "was found on its OS disk")


# the QEMU base image, exported and imported (boots a real guest: run with -m qemu) -----------------------------
@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.guests("qemu")
def test_vm_boots_from_imported_base_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emulator.guests.qemu import runtime as qr
    from emulator.guests.qemu.image import build_base_image, default_cache_dir
    from emulator.guests.qemu.tools import RUNTIME_TOOLS
    from tests.emulator.guests.qemu.test_runtime import Ssh, _address, keypair

    missing = missing_packages(RUNTIME_TOOLS)
    if missing:
        pytest.skip(f"QEMU guests need: apt-get install {' '.join(missing)}")
    base = build_base_image(default_cache_dir(), refresh=False)
    exported = tmp_path / "exported.vhd"
    _run(tool("qemu-img"), "convert", "-f", "qcow2", "-O", "vpc", "-o", "subformat=fixed,force_size=on",
         str(base.qcow2), str(exported))
    _qemu(monkeypatch)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ctx = Context(store=Store(str(tmp_path / "state.db")), state_dir=str(tmp_path / "state"))
    ctx.extras["loop"] = loop
    recorder = _recorder()
    rt = qr.QemuRuntime(recorder, ctx)
    vm = vm_id("imported-base")
    try:
        d = imported.descriptor_for(ctx, exported, os_type="Linux")
        assert d["kind"] == "file" and d["format"] == "vpc" and d["root_uuid"] == base.root_uuid
        assert Path(d["kernel"]).read_bytes() == base.kernel.read_bytes()
        assert Path(d["initrd"]).read_bytes() == base.initrd.read_bytes()
        key, pub = keypair("import@test")
        address = _address()
        rt.boot(GuestSpec(vm_id=vm, os_type="Linux", address=address, disk=d, computer_name="imported01",
                          admin_username="importer", ssh_public_keys=[pub]))
        assert recorder.wait("booted", 900)[1] == vm
        ssh = Ssh(address, rt.ssh_port, "importer", key)
        try:
            assert ssh.run("hostname")[1].strip() == "imported01"
            assert ssh.run("findmnt -no UUID /")[1].strip() == base.root_uuid
        finally:
            ssh.close()
    finally:
        rt.destroy(vm)
        rt.close(stop_guests=True)
        leftover = rt.live_pids()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        ctx.store.close()
    assert leftover == []
