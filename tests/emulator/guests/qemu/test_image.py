"""The Debian base image builder: version and cache-key logic (fast), a real build and boot (slow)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.guests.qemu import image as image_mod
from emulator.guests.qemu import resolve
from emulator.guests.qemu.image import BaseImage, build_base_image, cache_key, marketplace_version, recipe_digest
from emulator.guests.qemu.tools import ToolsMissing, ensure_tools, missing_packages

VERSION = re.compile(r"^\d+\.\d+\.\d+$")
MANIFEST = {"openssh-server": "1:9.2p1-2+deb12u5", "cloud-init": "22.4.2-1+deb12u1"}


def test_version_is_three_azure_ints_from_date_and_key() -> None:
    key = cache_key(recipe_digest("bookworm"), MANIFEST)
    version = marketplace_version("20250316", key)
    assert VERSION.match(version)
    major, minor, patch = (int(p) for p in version.split("."))
    assert (major, minor) == (0, 20250316)
    assert 0 <= patch < 2**31  # Azure version parts are int32
    assert marketplace_version("20250316", key) == version  # deterministic
    with pytest.raises(ValueError):
        marketplace_version("2025-03-16", key)


def test_cache_key_changes_with_any_package_update_or_recipe() -> None:
    recipe = recipe_digest("bookworm")
    key = cache_key(recipe, MANIFEST)
    assert cache_key(recipe, dict(reversed(list(MANIFEST.items())))) == key  # order does not matter
    patched = {**MANIFEST, "openssh-server": "1:9.2p1-2+deb12u6"}
    assert cache_key(recipe, patched) != key
    assert marketplace_version("20250316", cache_key(recipe, patched)) != marketplace_version("20250316", key)
    assert cache_key(recipe_digest("trixie"), MANIFEST) != key
    assert recipe_digest("bookworm") == recipe  # stable across calls


def test_recipe_covers_the_files_written_into_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    before = recipe_digest("bookworm")
    monkeypatch.setattr(image_mod.rootfs, "WAAGENT_SETTINGS", {"Provisioning.Agent": "auto"})
    assert recipe_digest("bookworm") != before


def test_apt_simulation_output_and_minbase_index_parsing(tmp_path: Path) -> None:
    out = "NOTE: simulation\nInst libc6 (2.36-9+deb12u10 Debian:12.10/stable [amd64])\nConf libc6 (2.36)\n"
    out += "Inst openssh-server [1:9.2p1-2] (1:9.2p1-2+deb12u10 Debian-Security:12/stable-security [amd64])\n"
    assert resolve.parse_simulation(out) == {"libc6": "2.36-9+deb12u10", "openssh-server": "1:9.2p1-2+deb12u10"}
    lists = tmp_path
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text(
        "Package: bash\nEssential: yes\nPriority: required\n\n"
        "Package: tzdata\nPriority: required\n\nPackage: vim\nPriority: optional\n\n"
    )
    assert resolve.minbase_packages(lists, "bookworm") == ["bash", "tzdata"]
    (lists / "x_InRelease").write_text("Origin: Debian\nDate: Sun, 16 Mar 2025 09:07:21 UTC\n")
    (lists / "y_InRelease").write_text("Origin: Debian\nDate: Sat, 15 Mar 2025 23:00:00 UTC\n")
    assert resolve.snapshot_date(lists) == "20250316"


def test_missing_tools_name_the_apt_packages() -> None:
    assert missing_packages({"sh": "dash", "no-such-tool-xyz": "pkg-xyz"}) == ["pkg-xyz"]
    with pytest.raises(ToolsMissing, match="apt-get install -y pkg-xyz"):
        ensure_tools({"no-such-tool-xyz": "pkg-xyz"})


def _fake_builder(monkeypatch: pytest.MonkeyPatch, manifest: dict[str, str]) -> list[str]:
    """Replace resolution and the real build with fakes; returns the list of keys built."""
    built: list[str] = []

    def fake_build(entry: Path, suite: str, recipe: str, key: str, version: str, log: object) -> None:
        time.sleep(0.3)  # long enough for a concurrent caller to race us
        out = entry.parent / f".build-{key[:6]}"
        out.mkdir()
        meta = {"key": key, "recipe": recipe, "version": version, "root_uuid": "u", "cmdline": "c",
                "manifest": manifest, "size": 1, "built_at": f"t{len(built)}"}  # fmt: skip
        (out / "image.json").write_text(json.dumps(meta))
        out.rename(entry)
        built.append(key)

    monkeypatch.setattr(image_mod, "ensure_tools", lambda: None)
    monkeypatch.setattr(image_mod, "resolve", lambda root, suite, pkgs: resolve.Resolution(dict(manifest), "20250316"))
    monkeypatch.setattr(image_mod, "_build", fake_build)
    return built


def test_concurrent_builders_build_once_and_reuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _fake_builder(monkeypatch, MANIFEST)
    (tmp_path / ".build-deadbeef").mkdir(parents=True)  # what a killed build leaves
    results: list[BaseImage] = []
    threads = [threading.Thread(target=lambda: results.append(build_base_image(tmp_path, log=lambda m: None)))
               for _ in range(2)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and results[0] == results[1]
    assert results[0].version == marketplace_version("20250316", built[0])
    assert not (tmp_path / ".build-deadbeef").exists()
    # a Debian update: new key, new version, and the old image stays for VMs still using it
    monkeypatch.setattr(image_mod, "resolve", lambda *a: resolve.Resolution({**MANIFEST, "zstd": "2"}, "20250401"))
    newer = build_base_image(tmp_path, log=lambda m: None)
    assert len(built) == 2 and newer.version.startswith("0.20250401.") and results[0].qcow2.parent.exists()


def test_offline_falls_back_to_the_newest_cached_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _fake_builder(monkeypatch, MANIFEST)
    first = build_base_image(tmp_path, log=lambda m: None)

    def unreachable(*a: object) -> None:
        raise RuntimeError("apt-get update failed: Could not resolve deb.debian.org")

    monkeypatch.setattr(image_mod, "resolve", unreachable)
    logged: list[str] = []
    assert build_base_image(tmp_path, log=logged.append) == first
    assert "could not refresh" in logged[0] and len(built) == 1
    assert build_base_image(tmp_path, log=logged.append, refresh=False) == first


# --- a real build (cached across runs) and a boot -------------------------------------------


@pytest.fixture(scope="session")
def base_image() -> BaseImage:
    try:
        ensure_tools()
    except ToolsMissing as err:
        pytest.skip(str(err))
    started = time.monotonic()
    img = build_base_image(image_mod.default_cache_dir(), log=lambda m: print(m, flush=True))
    print(f"base image {img.version}: {time.monotonic() - started:.0f} s (built {img.built_at})")
    return img


@pytest.mark.slow
@pytest.mark.qemu
def test_build_base_image_and_reuse_the_cache(base_image: BaseImage) -> None:
    img = base_image
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(img.qcow2)], check=True, capture_output=True, text=True
        ).stdout
    )
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == image_mod.DISK_SIZE_MIB * 2**20 == img.size
    assert img.kernel.stat().st_size > 1_000_000 and img.initrd.stat().st_size > 1_000_000
    assert img.initrd.stat().st_size < 20 * 2**20  # MODULES=list + zstd, not the 30+ MiB default
    for pkg in ("openssh-server", "cloud-init", "waagent", "qemu-guest-agent", "systemd-resolved"):
        assert pkg in img.manifest
    assert any(p.startswith("linux-image-") and "cloud-amd64" in p for p in img.manifest)
    assert VERSION.match(img.version)
    assert f"root=UUID={img.root_uuid}" in img.cmdline and "console=ttyS0" in img.cmdline
    meta = img.qcow2.parent / "image.json"
    mtime = meta.stat().st_mtime_ns

    again = build_base_image(image_mod.default_cache_dir(), log=lambda m: None)
    assert again == img  # same version, key and build stamp: reused, not rebuilt
    assert meta.stat().st_mtime_ns == mtime
    offline = build_base_image(image_mod.default_cache_dir(), log=lambda m: None, refresh=False)
    assert offline.key == img.key
    assert not list(img.qcow2.parent.parent.glob(".build-*"))  # no half build left behind


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def booted(base_image: BaseImage, tmp_path: Path) -> Iterator[tuple[int, object, Path]]:
    import paramiko

    iso = shutil.which("genisoimage") or shutil.which("xorrisofs")
    if not (iso and shutil.which("qemu-system-x86_64")):
        pytest.skip("qemu-system-x86 and genisoimage are needed to boot the image")
    key = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    if key is None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
        key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "id"))
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    (seed_dir / "meta-data").write_text("instance-id: i-test\nlocal-hostname: imgtest\n")
    (seed_dir / "user-data").write_text(
        "#cloud-config\nusers:\n  - name: azureuser\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n"
        f"    ssh_authorized_keys: ['{key.get_name()} {key.get_base64()}']\n"
    )
    seed = tmp_path / "seed.iso"
    subprocess.run(
        [
            iso,
            "-quiet",
            "-output",
            str(seed),
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            str(seed_dir / "user-data"),
            str(seed_dir / "meta-data"),
        ],
        check=True,
    )
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base_image.qcow2), str(overlay)],
        check=True,
    )
    port = _free_port()
    console = tmp_path / "console.log"
    proc = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg,thread=multi", "-smp", "2", "-m", "1024", "-display", "none",
        "-serial", f"file:{console}", "-kernel", str(base_image.kernel), "-initrd", str(base_image.initrd),
        "-append", base_image.cmdline, "-drive", f"file={overlay},format=qcow2,if=virtio",
        "-drive", f"file={seed},format=raw,media=cdrom,readonly=on",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=n0",
        "-device", "virtio-serial", "-chardev", f"socket,path={tmp_path / 'qga.sock'},server=on,wait=off,id=qga0",
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0", "-device", "virtio-rng-pci",
    ], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield port, key, console
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _ssh(port: int, key: object, deadline: float):  # type: ignore[no-untyped-def]
    import paramiko

    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                "127.0.0.1",
                port=port,
                username="azureuser",
                pkey=key,
                timeout=10,  # type: ignore[arg-type]
                banner_timeout=10,
                auth_timeout=10,
                allow_agent=False,
                look_for_keys=False,
            )
            return client
        except Exception:
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(3)


@pytest.mark.slow
@pytest.mark.qemu
def test_base_image_boots_to_ssh_with_the_traps_handled(booted: tuple[int, object, Path]) -> None:
    port, key, console = booted
    started = time.monotonic()
    try:
        client = _ssh(port, key, started + 180)
    except Exception:
        pytest.fail(f"no SSH within 180 s; console tail:\n{console.read_text(errors='replace')[-3000:]}")
    print(f"boot to SSH: {time.monotonic() - started:.0f} s")
    try:

        def run(cmd: str) -> str:
            _, out, _ = client.exec_command(cmd, timeout=120)
            return str(out.read().decode())

        assert run("hostname").strip() == "imgtest"
        assert run("sudo -n true && echo ok").strip() == "ok"
        keys = run("ls /etc/ssh/").split()
        assert "ssh_host_ed25519_key" in keys and "ssh_host_rsa_key" not in keys
        assert len(run("cat /etc/machine-id").strip()) == 32  # generated at first boot
        assert run("readlink /etc/resolv.conf").strip().endswith("stub-resolv.conf")
        assert run("grep -c UUID= /etc/fstab").strip() == "1"
        assert "Provisioning.Agent=disabled" in run("cat /etc/waagent.conf")
        run("cloud-init status --wait >/dev/null 2>&1")
        assert "status: done" in run("cloud-init status")
        assert run("systemctl is-active qemu-guest-agent").strip() == "active"
        assert run("ip -4 -o addr show scope global")  # DHCP from systemd-networkd
        print(run("systemd-analyze; systemd-analyze blame | head -8; systemd-analyze critical-chain ssh.service"))
    finally:
        client.close()


def test_resolution_refreshes_lists_at_most_every_max_age_and_memoizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_apt(env: dict[str, str], *args: str) -> str:
        calls.append(args)
        return "Inst bash (5.2.15-2+b7 Debian:12 [amd64])\nInst zstd (1.5.4+dfsg2-5 Debian:12 [amd64])\n"

    monkeypatch.setattr(resolve, "_apt", fake_apt)
    lists = tmp_path / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "d_dists_bookworm_main_binary-amd64_Packages").write_text("Package: bash\nEssential: yes\n\n")
    (lists / "d_InRelease").write_text("Date: Sun, 16 Mar 2025 09:07:21 UTC\n")
    first = resolve.resolve(tmp_path, "bookworm", ["zstd"])
    assert first.manifest == {"bash": "5.2.15-2+b7", "zstd": "1.5.4+dfsg2-5"} and first.snapshot_date == "20250316"
    assert [c[0] for c in calls] == ["update", "-s"]
    assert resolve.resolve(tmp_path, "bookworm", ["zstd"]) == first
    assert len(calls) == 2  # lists fresh and unchanged: neither update nor solver ran again
    resolve.resolve(tmp_path, "bookworm", ["zstd"], max_age=0)
    assert [c[0] for c in calls[2:]] == ["update"]  # refreshed; same lists so the memo still holds
