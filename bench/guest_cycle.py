"""One golden-image build, stage by stage, through the Azure SDK only, next to Packer's qemu builder.

Target (BENCHMARKS.md): one local golden-image build (boot source VM → customise → deprovision →
shut down → fixed VHD) faster than HashiCorp Packer's qemu builder doing the same job on the same
image and script (reference: Packer 1.6.6, median 70.7 s). The benchmark starts its own local
Azure (time factor 0, so Azure's pacing adds nothing) in a temporary directory and drives it with
the factory's ARM hook:

1. build: the QEMU base image (``build_base_image``; a cache hit unless ``--rebuild``);
2. boot → SSH: a VM from the Debian 12 Marketplace ``latest`` image, from its PUT to the first
   SSH login with the key given at creation;
3. customise: the script below, over that SSH session;
4. deprovision: the factory's generalize command, until the SSH session ends;
5. shutdown: until the instance view says ``PowerState/stopped``;
6. capture: deallocate + generalize + a gallery version's PUT until the home region's replica
   is Completed (the guest disk written as a fixed VHD, then copied into the home region);
7. replicate: per extra region, PUT → that region's replicationStatus Completed (0.2 s polls);
8. boot from replica: a VM from the version in the first extra region → SSH login.

Then the captured VHD is copied with ``cp --sparse=always`` and with copy_sparse (the functions of
``bench.replication_copy``) for the copy rate, and, when ``packer`` is installed, Packer's qemu
builder does stages 2-6 on the same base image (same kernel, QEMU accelerator, NoCloud seed,
customise script and generalize command) into a fixed VHD: the ratio project/Packer is the target.

    python -m bench.guest_cycle [--runtime qemu|simulated] [--packer auto|yes|no] [--regions 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "plugins"):  # the repository and the factory's hook, as pytest has them
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import paramiko  # noqa: E402

from bench import replication_copy as copybench  # noqa: E402
from image_factory.guest_commands import linux_generalize_command  # noqa: E402

HOME = "westeurope"
EXTRA_REGIONS = ["eastus", "japaneast", "westus2", "northeurope", "southeastasia"]
BUILD_USER, SMOKE_USER = "builder", "smoke"
MARKETPLACE = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"}
SSH_WAIT = 600.0  # TCG boot to SSH: ~30-50 s idle, minutes when busy; the emulator gives up at 600 s
SSH_RETRY = 0.5
POLL = 0.2  # ARM polls: power state, replication status
PACKER_REFERENCE_S = 70.7  # BENCHMARKS.md: Packer 1.6.6 (Debian), median of 3
PACKER_TIMEOUT = 1800.0
PACKER_MISSING = "`packer` is not on PATH: install Debian's package with `apt-get install -y packer` (1.6.6)"
MIB = 1024 * 1024

Log = Callable[[str], None]


def customise_lines(token: str) -> list[str]:
    """The customisation both builders run: wait for first boot's cloud-init, write a file, run one command.

    The wait is every cloud-init image build's first step: sshd is up before cloud-init's last
    stage ends, and the generalize command's ``cloud-init clean`` fails while it still writes.
    """
    return ["cloud-init status --wait >/dev/null", f"echo {token} | sudo tee /etc/golden-release", "uname -r"]


# small pieces ---------------------------------------------------------------------------------
@dataclass
class Report:
    runtime: str
    stages: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    load: dict[str, float] = field(default_factory=dict)  # 1-minute load average as each stage ended

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        self.stages[stage] = time.perf_counter() - began
        self.load[stage] = os.getloadavg()[0]


def sdk_models(service: str) -> Any:
    """azure.mgmt.<service>.models, untyped: its stubs know only the nested ``properties=`` form of bodies."""
    return importlib.import_module(f"azure.mgmt.{service}.models")


def keypair(comment: str) -> tuple[paramiko.Ed25519Key, str, str]:
    """A fresh ed25519 key: (paramiko key, OpenSSH private key text, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        .decode()
    )
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    return key, pem, f"ssh-ed25519 {key.get_base64()} {comment}"


def ssh_banner(address: str, port: int = 22, timeout: float = 2.0) -> bool:
    """Does sshd greet? QEMU's forwarder accepts before the guest listens, and then stays silent."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(256).startswith(b"SSH-")
    except OSError:
        return False


def ssh_login(
    address: str, user: str, key: paramiko.PKey, create: Any = None, wait: float = SSH_WAIT
) -> paramiko.SSHClient:
    """The first successful login, retried every SSH_RETRY s (a fresh guest refuses or drops until sshd runs).

    A short banner probe comes first: paramiko would sit out its whole banner timeout on a silent forwarder.
    ``create`` (the VM's create poller) ends the wait early when ARM fails the VM (a guest that never boots).
    """
    deadline = time.monotonic() + wait
    while not ssh_banner(address):
        if create is not None and create.done():
            create.result()  # raises if the VM failed; a VM that succeeded has sshd up any moment
        if time.monotonic() > deadline:
            raise TimeoutError(f"no SSH banner from {address} in {wait:.0f} s")
        time.sleep(SSH_RETRY)
    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                address,
                username=user,
                pkey=key,
                timeout=10,
                banner_timeout=30,
                auth_timeout=30,
                allow_agent=False,
                look_for_keys=False,
            )
            return client
        except (OSError, paramiko.SSHException, EOFError):
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(SSH_RETRY)


def ssh_run(client: paramiko.SSHClient, command: str, timeout: float = 600) -> tuple[int, str]:
    _in, out, err = client.exec_command(command, timeout=timeout)
    text = out.read().decode() + err.read().decode()
    return out.channel.recv_exit_status(), text


def network(arm: Any, group: str, location: str, prefix: str) -> tuple[str, str]:
    """VNet + NSG (SSH) + public IP + NIC: the NIC id and the public address."""
    nm = sdk_models("network")
    net = arm.network
    nsg = net.network_security_groups.begin_create_or_update(
        group,
        f"{prefix}-nsg",
        nm.NetworkSecurityGroup(
            location=location,
            security_rules=[
                nm.SecurityRule(
                    name="ssh",
                    priority=100,
                    direction="Inbound",
                    access="Allow",
                    protocol="Tcp",
                    source_address_prefix="*",
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range="22",
                )
            ],
        ),
    ).result()
    vnet = net.virtual_networks.begin_create_or_update(
        group,
        f"{prefix}-vnet",
        nm.VirtualNetwork(
            location=location,
            address_space=nm.AddressSpace(address_prefixes=["10.40.0.0/16"]),
            subnets=[
                nm.Subnet(
                    name="default",
                    address_prefix="10.40.1.0/24",
                    network_security_group=nm.NetworkSecurityGroup(id=nsg.id),
                )
            ],
        ),
    ).result()
    pip = net.public_ip_addresses.begin_create_or_update(
        group,
        f"{prefix}-ip",
        nm.PublicIPAddress(
            location=location, sku=nm.PublicIPAddressSku(name="Standard"), public_ip_allocation_method="Static"
        ),
    ).result()
    nic = net.network_interfaces.begin_create_or_update(
        group,
        f"{prefix}-nic",
        nm.NetworkInterface(
            location=location,
            ip_configurations=[
                nm.NetworkInterfaceIPConfiguration(
                    name="ipconfig1",
                    subnet=nm.Subnet(id=vnet.subnets[0].id),
                    public_ip_address=nm.PublicIPAddress(id=pip.id),
                )
            ],
        ),
    ).result()
    return str(nic.id), str(net.public_ip_addresses.get(group, f"{prefix}-ip").ip_address)


def vm_body(location: str, nic_id: str, image: Any, admin: str, pubkey: str, name: str) -> Any:
    cm = sdk_models("compute")
    return cm.VirtualMachine(
        location=location,
        hardware_profile=cm.HardwareProfile(vm_size="Standard_B2s"),
        storage_profile=cm.StorageProfile(
            image_reference=image,
            os_disk=cm.OSDisk(
                create_option="FromImage", managed_disk=cm.ManagedDiskParameters(storage_account_type="StandardSSD_LRS")
            ),
        ),
        network_profile=cm.NetworkProfile(network_interfaces=[cm.NetworkInterfaceReference(id=nic_id, primary=True)]),
        os_profile=cm.OSProfile(
            computer_name=name,
            admin_username=admin,
            linux_configuration=cm.LinuxConfiguration(
                disable_password_authentication=True,
                ssh=cm.SshConfiguration(
                    public_keys=[cm.SshPublicKey(path=f"/home/{admin}/.ssh/authorized_keys", key_data=pubkey)]
                ),
            ),
        ),
    )


def power_state(arm: Any, group: str, vm: str) -> str:
    view = arm.compute.virtual_machines.instance_view(group, vm)
    return next((s.code for s in view.statuses or [] if s.code and s.code.startswith("PowerState/")), "")


def _region(name: str) -> str:
    return name.replace(" ", "").lower()


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


CLOUD_INIT_STAGE = re.compile(r"Cloud-init v\. \S+ (?:running '([^']+)'|(finished)) at .*? Up ([0-9.]+) seconds")


def cloud_init_uptimes(console: Path) -> dict[str, float]:
    """The guest's own uptime as each cloud-init stage began, and when it finished (serial console log)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for running, finished, up in CLOUD_INIT_STAGE.findall(console.read_text(errors="replace")):
            found.setdefault(running or finished, float(up))
    return found


def qemu_processes_of(state_dir: Path) -> list[int]:
    """PIDs of QEMU processes whose command line names this local Azure's state directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if args and b"qemu-system" in args[0] and any(str(state_dir).encode() in a for a in args):
                found.append(int(proc.name))
    return found


# stage 1 ----------------------------------------------------------------------------------------
def build_stage(report: Report, rebuild: bool, cache_dir: Path, log: Log) -> Any:
    """The base image: the cached one (refresh=False), or a fresh build into ``cache_dir`` with ``--rebuild``."""
    from emulator.guests.qemu.image import build_base_image

    began, began_wall = time.perf_counter(), time.time()
    if rebuild:  # a new cache directory: build_base_image has no "force", and an empty cache always builds
        image = build_base_image(cache_dir, refresh=True, log=log)
    else:
        image = build_base_image(refresh=False, log=log)
    report.stages["build"] = time.perf_counter() - began
    report.load["build"] = os.getloadavg()[0]
    meta = json.loads((image.qcow2.parent / "image.json").read_text())
    hit = datetime.fromisoformat(image.built_at).timestamp() < began_wall - 1  # built before this run
    report.extra["base_image"] = {
        "version": image.version,
        "cache_hit": hit,
        "built_at": image.built_at,
        "build_seconds_when_built": meta.get("build_seconds"),
        "qcow2_mib": image.qcow2.stat().st_blocks * 512 / MIB,
    }
    report.notes["build"] = (
        f"cache hit, version {image.version} (built {image.built_at} in {meta.get('build_seconds')} s)"
        if hit
        else f"built version {image.version}"
    )
    return image


# stages 2-8 -------------------------------------------------------------------------------------
def guest_cycle(
    report: Report,
    arm: Any,
    state_dir: Path,
    regions: list[str],
    work: Path,
    copy_reps: int,
    synthetic: tuple[int, int],
    log: Log,
) -> None:
    """Stages 2-8 and the copy comparison, in resource groups the caller deletes."""
    cm = sdk_models("compute")
    run = report.extra["run"]
    group, gallery_group = report.extra["groups"]
    token = f"golden-{run}"
    vms = arm.compute.virtual_machines

    build_key, _pem, build_pub = keypair("bench-build")
    nic, address = network(arm, group, HOME, "build")
    log("2 boot → SSH ...")
    with report.timed("boot_ssh"):
        poller = vms.begin_create_or_update(
            group, "build-vm", vm_body(HOME, nic, cm.ImageReference(**MARKETPLACE), BUILD_USER, build_pub, "build-vm")
        )
        ssh = ssh_login(address, BUILD_USER, build_key, poller)
    vm = poller.result()
    report.notes["boot_ssh"] = f"Marketplace Debian 12 {vm.storage_profile.image_reference.exact_version}"
    try:
        log("3 customise ...")
        with report.timed("customise"):
            code, out = ssh_run(ssh, " && ".join(customise_lines(token)))
        if code != 0:
            raise RuntimeError(f"customise failed ({code}): {out}")
        report.notes["customise"] = f"kernel {out.strip().splitlines()[-1]}"
        log("4 deprovision ...")
        with report.timed("deprovision"):
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                ssh_run(ssh, linux_generalize_command(), timeout=300)
    finally:
        ssh.close()
    log("5 shutdown ...")
    with report.timed("shutdown"):
        deadline = time.monotonic() + 300
        while power_state(arm, group, "build-vm") != "PowerState/stopped":
            if time.monotonic() > deadline:
                raise RuntimeError("the guest did not power off after deprovisioning")
            time.sleep(POLL)

    consoles = list((state_dir / "guests").glob("*/console.log"))  # the build VM's, with the qemu runtime
    if consoles:
        report.extra["guest_cloud_init_uptimes_s"] = cloud_init_uptimes(consoles[0])
    gal = arm.compute.galleries.begin_create_or_update(
        gallery_group, f"bench_{run}", cm.Gallery(location=HOME)
    ).result()
    definition = arm.compute.gallery_images.begin_create_or_update(
        gallery_group,
        gal.name,
        "debian12-golden",
        cm.GalleryImage(
            location=HOME,
            os_type="Linux",
            os_state="Generalized",
            hyper_v_generation="V2",
            identifier=cm.GalleryImageIdentifier(publisher="Bench", offer="debian-12-golden", sku=run),
        ),
    ).result()
    log("6 capture, 7 replicate ...")
    capture_parts = capture_and_replicate(
        report, arm, group, vm.id, gallery_group, gal.name, definition.name, [HOME, *regions]
    )
    report.notes["capture"] = ", ".join(f"{k} {v:.2f} s" for k, v in capture_parts.items())

    compare_copies(report, state_dir, work, copy_reps, synthetic, regions)

    if regions:
        second = regions[0]
        log(f"8 boot from the {second} replica → SSH ...")
        smoke_key, _pem, smoke_pub = keypair("bench-smoke")
        smoke_nic, smoke_address = network(arm, group, second, "smoke")
        version_id = report.extra["version_id"]
        with report.timed("boot_replica_ssh"):
            poller = vms.begin_create_or_update(
                group,
                "smoke-vm",
                vm_body(second, smoke_nic, cm.ImageReference(id=version_id), SMOKE_USER, smoke_pub, "smoke-vm"),
            )
            ssh = ssh_login(smoke_address, SMOKE_USER, smoke_key, poller)
        poller.result()
        try:
            code, out = ssh_run(ssh, "cat /etc/golden-release")
            if code != 0 or out.strip() != token:
                raise RuntimeError(f"the replica lacks the customisation: {out!r}")
        finally:
            ssh.close()
        report.notes["boot_replica_ssh"] = f"{second}, /etc/golden-release checked"


def capture_and_replicate(
    report: Report,
    arm: Any,
    group: str,
    vm_id: str,
    gallery_group: str,
    gallery: str,
    definition: str,
    targets: list[str],
) -> dict[str, float]:
    """Stage 6 (deallocate, generalize, PUT → home Completed) and 7 (PUT → each region Completed)."""
    cm = sdk_models("compute")
    vms, versions = arm.compute.virtual_machines, arm.compute.gallery_image_versions
    parts: dict[str, float] = {}
    began = time.perf_counter()
    vms.begin_deallocate(group, "build-vm").result()
    parts["deallocate"] = time.perf_counter() - began
    mark = time.perf_counter()
    vms.generalize(group, "build-vm")
    parts["generalize"] = time.perf_counter() - mark
    body = cm.GalleryImageVersion(
        location=HOME,
        publishing_profile=cm.GalleryImageVersionPublishingProfile(
            target_regions=[cm.TargetRegion(name=r, regional_replica_count=1) for r in targets]
        ),
        storage_profile=cm.GalleryImageVersionStorageProfile(
            source=cm.GalleryArtifactVersionFullSource(virtual_machine_id=vm_id)
        ),
    )
    put = time.perf_counter()
    poller = versions.begin_create_or_update(gallery_group, gallery, definition, "1.0.0", body)
    parts["version PUT"] = time.perf_counter() - put
    done: dict[str, float] = {}
    deadline = time.monotonic() + 1800
    while len(done) < len(targets):
        got = versions.get(gallery_group, gallery, definition, "1.0.0", expand="ReplicationStatus")
        for s in (got.replication_status.summary if got.replication_status else None) or []:
            region, state = _region(s.region), _state(s.state)
            if state == "Failed":
                raise RuntimeError(f"replication to {region} failed: {s.details}")
            if state == "Completed" and region not in done:
                done[region] = time.perf_counter() - put
        if time.monotonic() > deadline:
            raise RuntimeError(f"replication did not complete: {done}")
        time.sleep(POLL)
    version = poller.result()
    report.extra["version_id"] = version.id
    parts[f"PUT → {HOME} Completed"] = done[HOME]
    report.stages["capture"] = parts["deallocate"] + parts["generalize"] + done[HOME]
    for region in targets[1:]:
        report.stages[f"replicate:{region}"] = done[region]
    for stage in ("capture", *(f"replicate:{r}" for r in targets[1:])):
        report.load[stage] = os.getloadavg()[0]
    report.extra["replication_done_s"] = done
    return parts


def compare_copies(
    report: Report, state_dir: Path, work: Path, reps: int, synthetic: tuple[int, int], regions: list[str]
) -> None:
    """cp --sparse=always vs copy_sparse on the captured VHD (a synthetic one when guests are simulated)."""
    # a VM's capture is the version's own master (under disks/); other sources are linked under gallery/masters/
    masters = sorted([*(state_dir / "disks").glob("*.vhd"), *(state_dir / "gallery" / "masters").rglob("*.vhd")])
    if masters:
        src, origin = masters[0], "the captured VHD (the gallery version's master)"
    else:
        src, origin = work / "synthetic.vhd", f"a synthetic VHD ({synthetic[0]} MiB, {synthetic[1]} MiB data)"
        copybench.build_vhd(src, *synthetic)
    alloc_mib = copybench.allocated(src) / MIB
    copies = copybench.compare(src, work, reps, drop_caches=False)
    rates = {tool: alloc_mib / c["median_s"] for tool, c in copies.items()}
    done: dict[str, float] = report.extra.get("replication_done_s", {})
    per_region = {r: alloc_mib / done[r] for r in regions if masters and done.get(r)}
    report.extra["copy"] = {
        "source": origin,
        "apparent_mib": src.stat().st_size / MIB,
        "allocated_mib": alloc_mib,
        "copies": copies,
        "rates_mib_s": rates,
        "copy_sparse_vs_cp_fsync": rates["copy_sparse"] / rates["cp_fsync"],
        "replication_mib_s": per_region,
    }


def run_cycle(report: Report, args: argparse.Namespace, work: Path, image_cache: Path | None, log: Log) -> None:
    """Start a local Azure, run stages 2-8 through the hook, and delete everything it made."""
    from tests.localazure import LocalAzure

    env = {"LOCAL_AZURE_LINUX_RUNTIME": args.runtime}
    if image_cache is not None:
        env["LOCAL_AZURE_IMAGE_CACHE"] = str(image_cache)
    emu = LocalAzure(work / "azure", env=env)
    emu.start(timeout=60)
    report.extra["emulator_pid"] = emu.proc.pid if emu.proc else None
    conn_id = "bench_guest_cycle"
    key = f"AIRFLOW_CONN_{conn_id.upper()}"
    old = os.environ.get(key)
    arm: Any = None
    run = uuid.uuid4().hex[:8]
    report.extra["run"] = run
    report.extra["groups"] = groups = [f"bench-build-{run}", f"bench-gallery-{run}"]
    try:
        arm = emu.hook(conn_id)
        for name in groups:
            arm.resources.resource_groups.create_or_update(name, {"location": HOME})
        guest_cycle(
            report,
            arm,
            emu.state_dir,
            EXTRA_REGIONS[: args.regions],
            work,
            args.copy_reps,
            (args.synthetic_mib, args.synthetic_allocated_mib),
            log,
        )
    finally:
        try:
            if arm is not None:
                for name in groups:
                    with contextlib.suppress(Exception):
                        arm.resources.resource_groups.begin_delete(name).result()
        finally:
            emu.stop(timeout=120)  # by its PID; QEMU guests are powered off on exit
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
            leftovers = qemu_processes_of(emu.state_dir)
            for pid in leftovers:  # our emulator's guests only (their command line names its state dir)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            report.extra["qemu_left_behind"] = leftovers


# Packer -----------------------------------------------------------------------------------------
def packer_template(image: Any, work: Path, seed: Path, key_file: Path, token: str, vhd: Path) -> dict[str, Any]:
    """Packer's qemu builder on the base image, booted as the emulator boots it (runtime.qemu_command)."""
    from emulator.guests.qemu.runtime import CPUS, MEMORY_MIB

    out = work / "packer-out"
    convert = [
        "qemu-img",
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=fixed,force_size=on",
        str(out / "golden.raw"),
        str(vhd),
    ]
    return {
        "builders": [
            {
                "type": "qemu",
                "iso_url": str(image.qcow2),
                "iso_checksum": "none",
                "disk_image": True,
                # raw, not a qcow2 overlay: Packer 1.6.6 creates overlays without -F, which qemu-img >= 6.1 refuses
                "format": "raw",
                "skip_compaction": True,
                "disk_interface": "virtio",
                "net_device": "virtio-net",
                "output_directory": str(out),
                "vm_name": "golden.raw",
                "headless": True,
                "accelerator": "none",  # TCG, with the emulator's options, through qemuargs below
                "disk_size": f"{image.size // MIB}M",
                "skip_resize_disk": True,  # else Packer grows it to 40 GiB
                "cpus": CPUS,
                "memory": MEMORY_MIB,
                "boot_wait": "1s",  # nothing to type into a disk image; "0s" would mean Packer's default, 10 s
                "qemuargs": [
                    ["-accel", "tcg,thread=multi"],
                    ["-kernel", str(image.kernel)],
                    ["-initrd", str(image.initrd)],
                    ["-append", image.cmdline],
                    ["-cdrom", str(seed)],  # the NoCloud seed: builder user and key, as the emulator's first boot
                    ["-device", "virtio-rng-pci"],
                    ["-serial", f"file:{work / 'packer-console.log'}"],
                ],
                "communicator": "ssh",
                "ssh_username": BUILD_USER,
                "ssh_private_key_file": str(key_file),
                "ssh_timeout": "20m",
                "shutdown_command": linux_generalize_command(),
                "shutdown_timeout": "5m",
            }
        ],
        "provisioners": [{"type": "shell", "inline": customise_lines(token)}],
        "post-processors": [{"type": "shell-local", "inline": [shlex.join(convert)]}],
    }


PACKER_MARKS = (  # machine-readable ui lines that start Packer's phases
    ("prepare", ""),
    ("boot_ssh", "Starting VM"),
    ("customise", "Connected to SSH!"),
    ("deprovision_shutdown", "Gracefully halting"),
    ("vhd", "Running post-processor"),
)


def packer_phases(lines: list[str], began: float, ended: float) -> dict[str, float]:
    """Seconds per phase from ``packer -machine-readable`` ui lines (unix timestamps, whole seconds)."""
    stamps: dict[str, float] = {"prepare": began}
    for line in lines:
        parts = line.split(",", 4)
        if len(parts) < 5 or parts[2] != "ui":
            continue
        for phase, mark in PACKER_MARKS[1:]:
            if phase not in stamps and mark in parts[4]:
                stamps[phase] = float(parts[0])
    order = [p for p, _m in PACKER_MARKS if p in stamps]
    ends = [*[stamps[p] for p in order[1:]], ended]
    return {p: max(0.0, e - stamps[p]) for p, e in zip(order, ends, strict=True)}


def run_packer(image: Any, work: Path, log: Log) -> dict[str, Any]:
    """``packer build`` of stages 2-6 on the base image; its wall time and phases. Leaves nothing running."""
    from emulator.guests.base import GuestSpec
    from emulator.guests.qemu.seed import build_seed
    from emulator.storage import vhd as vhdlib

    pk = work / "packer"
    pk.mkdir()
    _key, pem, pub = keypair("bench-packer")
    key_file = pk / "id_ed25519"
    key_file.write_text(pem)
    key_file.chmod(0o600)
    seed = build_seed(
        GuestSpec(
            vm_id="/bench/packer-vm",
            os_type="Linux",
            address="",
            disk={},
            computer_name="packer-vm",
            admin_username=BUILD_USER,
            ssh_public_keys=[pub],
        ),
        pk / "seed.iso",
    )
    token = "golden-packer"
    out_vhd = pk / "golden.vhd"
    template = pk / "golden.json"
    template.write_text(json.dumps(packer_template(image, pk, seed, key_file, token, out_vhd), indent=1))
    version = subprocess.run(["packer", "version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    env = {
        **os.environ,
        "PACKER_CACHE_DIR": str(pk / "cache"),
        "CHECKPOINT_DISABLE": "1",
        "PACKER_CONFIG_DIR": str(pk),
        "TMPDIR": str(pk),
    }
    log(f"Packer ({version}) builds the same image ...")
    began_wall, began = time.time(), time.perf_counter()
    proc = subprocess.Popen(
        ["packer", "build", "-machine-readable", str(template)],
        cwd=pk,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=PACKER_TIMEOUT)
    finally:
        if proc.poll() is None:  # its own process group: packer and the QEMU it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.perf_counter() - began
    (pk / "packer.log").write_text(output)
    lines = output.splitlines()
    if proc.returncode != 0 or not out_vhd.exists():
        errors = [ln.split(",", 4)[-1] for ln in lines if ",error," in ln or "Build 'qemu' errored" in ln]
        raise RuntimeError(f"packer build failed ({proc.returncode}): {' | '.join(errors)[-1500:]}")
    footer = vhdlib.check_fixed(out_vhd)
    return {
        "version": version,
        "seconds": seconds,
        "load": os.getloadavg()[0],
        "guest_cloud_init_uptimes_s": cloud_init_uptimes(pk / "packer-console.log"),
        "phases": packer_phases(lines, began_wall, began_wall + seconds),
        "vhd_mib": footer.current_size / MIB,
        "vhd_allocated_mib": copybench.allocated(out_vhd) / MIB,
    }


def packer_stage(report: Report, mode: str, image: Any, work: Path, log: Log) -> None:
    if mode == "no":
        report.extra["packer"] = {"skipped": "--packer no"}
        return
    if shutil.which("packer") is None:
        report.extra["packer"] = {"skipped": PACKER_MISSING}
        return
    try:
        report.extra["packer"] = run_packer(image, work, log)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:  # the project's numbers still print
        report.extra["packer"] = {"failed": str(err)}
    finally:
        shutil.rmtree(work / "packer", ignore_errors=True)


# output -----------------------------------------------------------------------------------------
PROJECT_STAGES = ("boot_ssh", "customise", "deprovision", "shutdown", "capture")
LABELS = {
    "build": "1 build: base image",
    "boot_ssh": "2 boot → SSH (PUT → login)",
    "customise": "3 customise",
    "deprovision": "4 deprovision (until SSH ends)",
    "shutdown": "5 shutdown (until PowerState/stopped)",
    "capture": "6 capture (dealloc+generalize+VHD)",
    "boot_replica_ssh": "8 boot from replica → SSH",
}


def summarise(report: Report) -> dict[str, Any]:
    """The build's total (stages 2-6) and its ratios to Packer, measured and reference."""
    project = sum(report.stages[s] or 0.0 for s in PROJECT_STAGES)
    out: dict[str, Any] = {
        "project_build_s": project,
        "packer_reference_s": PACKER_REFERENCE_S,
        "vs_packer_reference": project / PACKER_REFERENCE_S,
    }
    packer = report.extra.get("packer", {})
    if "seconds" in packer:
        out["packer_s"] = packer["seconds"]
        out["vs_packer"] = project / packer["seconds"]
    return out


def _row(label: str, seconds: float | None, load: float | None, note: str = "") -> str:
    shown = "-" if seconds is None else f"{seconds:.2f}"
    return f"{label:44s} {shown:>8s} {'' if load is None else f'{load:5.1f}':>5s}   {note}".rstrip()


def render(report: Report) -> str:
    lines = []
    if report.runtime == "simulated":
        lines.append(
            "guest runtime: SIMULATED (in-process model of Debian, not a real machine; "
            "times are the emulator's and the SDK's only)"
        )
    else:
        lines.append("guest runtime: qemu (real Debian 12 guests under QEMU, TCG)")
    lines.append(f"{'stage':44s} {'seconds':>8s} {'load':>5s}   notes")
    for stage in ("build", *PROJECT_STAGES):
        lines.append(_row(LABELS[stage], report.stages.get(stage), report.load.get(stage), report.notes.get(stage, "")))
    rates = report.extra.get("copy", {}).get("replication_mib_s", {})
    for stage, value in report.stages.items():
        if stage.startswith("replicate:"):
            region = stage.split(":", 1)[1]
            rate = f"{rates[region]:.0f} MiB/s of data" if region in rates else ""
            lines.append(_row(f"7 replicate → {region} (PUT → Completed)", value, report.load.get(stage), rate))
    if "boot_replica_ssh" in report.stages:
        lines.append(
            _row(
                LABELS["boot_replica_ssh"],
                report.stages["boot_replica_ssh"],
                report.load.get("boot_replica_ssh"),
                report.notes.get("boot_replica_ssh", ""),
            )
        )
    s = report.extra["summary"]
    lines.append(_row("golden-image build, project (2-6)", s["project_build_s"], None))
    packer = report.extra.get("packer", {})
    if "seconds" in packer:
        phases = ", ".join(f"{k} {v:.0f}" for k, v in packer["phases"].items())
        lines.append(
            _row(
                f"same job, {packer['version']} qemu builder",
                packer["seconds"],
                packer.get("load"),
                f"phases (s, whole-second stamps): {phases}",
            )
        )
        ours, theirs = report.extra.get("guest_cloud_init_uptimes_s", {}), packer["guest_cloud_init_uptimes_s"]
        if ours and theirs:
            both = ", ".join(f"{k} {ours[k]:.1f}/{theirs[k]:.1f}" for k in ours if k in theirs)
            lines.append(f"guest uptime at cloud-init stages, project/Packer (s, serial console): {both}")
        verdict = "met" if s["vs_packer"] < 1 else "NOT met"
        lines.append(f"project/Packer (same run): {s['vs_packer']:.2f}x ({verdict}, target < 1)")
    elif "failed" in packer:
        lines.append(f"Packer FAILED: {packer['failed']}")
    else:
        lines.append(f"Packer skipped: {packer.get('skipped', 'not run')}")
    lines.append(
        f"project/Packer reference (BENCHMARKS.md, median {PACKER_REFERENCE_S} s): "
        f"{s['vs_packer_reference']:.2f}x"
        + ("  [simulated guests: not comparable]" if report.runtime == "simulated" else "")
    )
    copy = report.extra.get("copy")
    if copy:
        r = copy["rates_mib_s"]
        lines.append(
            f"copy of {copy['source']}: {copy['apparent_mib']:.0f} MiB apparent, "
            f"{copy['allocated_mib']:.0f} MiB allocated"
        )
        lines.append(
            f"  cp --sparse=always {r['cp']:.0f} MiB/s, + fsync {r['cp_fsync']:.0f} MiB/s, "
            f"copy_sparse {r['copy_sparse']:.0f} MiB/s: copy_sparse/(cp+fsync) "
            f"{copy['copy_sparse_vs_cp_fsync']:.2f}x (target >= {copybench.TARGET}x)"
        )
        for region, rate in copy["replication_mib_s"].items():
            lines.append(
                f"  replication to {region}: {rate:.0f} MiB/s of data from PUT, "
                f"{rate / r['cp_fsync']:.2f}x cp+fsync (includes capture and queueing)"
            )
    return "\n".join(lines)


# main -------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runtime", choices=("qemu", "simulated"), default="qemu", help="Linux guest runtime")
    p.add_argument(
        "--packer",
        choices=("auto", "yes", "no"),
        default="auto",
        help="run Packer's qemu builder on the same job (auto: if `packer` is on PATH; qemu runtime only)",
    )
    p.add_argument("--regions", type=int, default=2, help="extra regions to replicate to (the first boots stage 8)")
    p.add_argument("--rebuild", action="store_true", help="build the base image afresh (in a temporary cache)")
    p.add_argument("--copy-reps", type=int, default=3, help="copies per tool in the cp/copy_sparse comparison")
    p.add_argument("--synthetic-mib", type=int, default=2048, help="simulated guests: size of the VHD to copy")
    p.add_argument("--synthetic-allocated-mib", type=int, default=480, help="simulated guests: its data")
    p.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary directory)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    if not 0 <= args.regions <= len(EXTRA_REGIONS):
        p.error(f"need 0 <= --regions <= {len(EXTRA_REGIONS)}")
    if not 1 <= args.copy_reps <= 20 or not 1 <= args.synthetic_allocated_mib < args.synthetic_mib:
        p.error("need 1 <= --copy-reps <= 20 and 1 <= --synthetic-allocated-mib < --synthetic-mib")
    if args.runtime == "simulated" and (args.packer == "yes" or args.rebuild):
        p.error("--packer yes and --rebuild need --runtime qemu (simulated guests have no disk image to boot)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # refused logins while the guest boots

    def log(message: str) -> None:
        if not args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    if args.packer == "yes" and shutil.which("packer") is None:
        print(f"--packer yes: {PACKER_MISSING}", file=sys.stderr)
        return 2
    report = Report(runtime=args.runtime)
    with tempfile.TemporaryDirectory(prefix="bench-guest-", dir=args.dir) as tmp:
        work = Path(tmp)
        image = None
        cache = work / "images" if args.rebuild else None
        if args.runtime == "qemu":
            log("1 base image ...")
            image = build_stage(report, args.rebuild, work / "images", log)
        else:
            report.stages["build"] = None
            report.notes["build"] = "skipped: simulated guests boot the emulator's simulated Debian disk"
        run_cycle(report, args, work, cache, log)
        if image is not None:
            packer_stage(report, args.packer, image, work, log)
        else:
            report.extra["packer"] = {"skipped": "simulated guests: nothing for Packer to boot"}
        report.extra["summary"] = summarise(report)
        print(render(report))
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "runtime": report.runtime,
                        "stages": report.stages,
                        "load": report.load,
                        "notes": report.notes,
                        **report.extra,
                    },
                    indent=2,
                    default=str,
                )
            )
    return 1 if "failed" in report.extra["packer"] else 0


if __name__ == "__main__":
    sys.exit(main())
