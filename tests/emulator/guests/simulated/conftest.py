"""Fixtures of the simulated-guest tests: pure systems with fake hooks, and live runtimes on real sockets.

Live guests listen on 127.100.250.x (clear of the network service's pools, which start at the low
end of 127.100.0.0/16 and at 127.101+ in tests) on high ports, so no root and no port 22 needed.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from emulator.core.context import Context
from emulator.core.store import Store
from emulator.guests.base import GuestSpec
from emulator.guests.simulated import (
    commands,  # noqa: F401 - registers the shell programs
    disk,
)
from emulator.guests.simulated.linux import LinuxSystem, Provisioning
from emulator.guests.simulated.runtime import SimulatedRuntime
from emulator.guests.simulated.session import Buffer, FakeHooks, TextInput
from emulator.guests.simulated.shell import IO, Shell
from tests.localazure import free_port

_addresses = itertools.count(1)
SSH_PORT = free_port()
WINRM_PORT = free_port()
WINRMS_PORT = free_port()
WINDOWS_PASSWORD = "Local-Azure-Pa55!"


def next_address() -> str:
    return f"127.100.250.{next(_addresses) % 250 + 1}"


@dataclass
class KeyPair:
    public: str
    pkey: paramiko.PKey
    path: Path  # OpenSSH private key file for the ssh CLI


def make_keypair(directory: Path, name: str) -> KeyPair:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=name)
    text = key.export_private_key().decode()
    path = directory / name
    path.write_text(text)
    os.chmod(path, 0o600)
    return KeyPair(key.export_public_key().decode().strip(), paramiko.Ed25519Key(file_obj=io.StringIO(text)), path)


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_keypair(tmp_path_factory.mktemp("keys"), "builder")


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_keypair(tmp_path_factory.mktemp("keys2"), "stranger")


# pure: a Debian system and a shell ---------------------------------------------------------------
@pytest.fixture
def hooks() -> FakeHooks:
    return FakeHooks(serial=12)


@pytest.fixture
def debian() -> LinuxSystem:
    """A Debian 12 image booted once as a generalized VM: user azureuser with a key, host name buildvm."""
    system = LinuxSystem(disk.base_disk("Linux", "debian-12", "0.20240101.1")["os"])
    system.boot()
    system.first_boot(Provisioning("vm-1", "buildvm", "azureuser", ["ssh-ed25519 AAAAC3Nza builder"]))
    return system


def run(system: LinuxSystem, hooks: FakeHooks, script: str, *, user: str = "azureuser",
        stdin: str = "") -> tuple[int, str, str]:
    out, err = Buffer(), Buffer()
    sh = Shell(system, hooks, user=user, cancel=threading.Event(), io=IO(TextInput(stdin), out, err))
    return sh.run_script(script), out.getvalue(), err.getvalue()


# live runtimes ---------------------------------------------------------------------------------
class Events:
    """A GuestEvents sink that records calls and lets a test wait for them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self._cv = threading.Condition()

    def booted(self, vm_id: str) -> None:
        self._add(("booted", vm_id))

    def stopped(self, vm_id: str) -> None:
        self._add(("stopped", vm_id))

    def failed(self, vm_id: str, code: str, message: str) -> None:
        self._add(("failed", vm_id, code, message))

    def _add(self, call: tuple[str, ...]) -> None:
        with self._cv:
            self.calls.append(call)
            self._cv.notify_all()

    def of(self, kind: str, vm_id: str) -> list[tuple[str, ...]]:
        with self._cv:
            return [c for c in self.calls if c[0] == kind and c[1] == vm_id]

    def wait(self, kind: str, vm_id: str, count: int = 1, timeout: float = 15.0) -> tuple[str, ...]:
        with self._cv:
            ok = self._cv.wait_for(lambda: len([c for c in self.calls if c[0] == kind and c[1] == vm_id]) >= count,
                                   timeout)
        assert ok, f"no {kind} #{count} for {vm_id} within {timeout}s; events: {self.calls}"
        return self.of(kind, vm_id)[count - 1]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path


def make_runtime(state_dir: Path, events: Events | None, *, time_factor: float = 0.0) -> SimulatedRuntime:
    ctx = Context(store=Store(str(state_dir / "state.db")), state_dir=str(state_dir), time_factor=time_factor)
    ctx.store.set_setting("time_factor", time_factor)
    return SimulatedRuntime(events, ctx, ssh_port=SSH_PORT, winrm_port=WINRM_PORT, winrms_port=WINRMS_PORT)


@pytest.fixture
def runtime(store_dir: Path, events: Events) -> Iterator[SimulatedRuntime]:
    rt = make_runtime(store_dir, events)
    rt.start()
    try:
        yield rt
    finally:
        rt.close()


def vm_id(name: str) -> str:
    return f"/subscriptions/5f1c7e38-6b7a-4d1e-9a3c-0d1b2c3d4e5f/resourceGroups/rg-sim/providers/Microsoft.Compute/" \
           f"virtualMachines/{name}"


def linux_spec(name: str, keypair: KeyPair, *, source: dict[str, Any] | None = None, computer_name: str | None = None,
               username: str = "azureuser", password: str | None = None, generalized: bool = True,
               custom_data: str | None = None) -> GuestSpec:
    return GuestSpec(vm_id=vm_id(name), os_type="Linux", address=next_address(),
                     disk=source or disk.base_disk("Linux", "debian-12"),
                     computer_name=(computer_name or name) if generalized else None,
                     admin_username=username if generalized else None, admin_password=password,
                     ssh_public_keys=[keypair.public] if generalized else [], custom_data=custom_data)


def windows_spec(name: str, *, source: dict[str, Any] | None = None, generalized: bool = True,
                 username: str = "factoryadmin") -> GuestSpec:
    return GuestSpec(vm_id=vm_id(name), os_type="Windows", address=next_address(),
                     disk=source or disk.base_disk("Windows", "2022-datacenter-azure-edition"),
                     computer_name=name if generalized else None, admin_username=username if generalized else None,
                     admin_password=WINDOWS_PASSWORD if generalized else None)


def ssh_client(address: str, user: str, key: KeyPair | None = None, password: str | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(address, port=SSH_PORT, username=user, pkey=key.pkey if key else None, password=password,
                   look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    return client


def exec_(client: paramiko.SSHClient, command: str, stdin: str | None = None,
          timeout: float = 20) -> tuple[int, str, str]:
    i, o, e = client.exec_command(command, timeout=timeout)
    if stdin is not None:
        i.write(stdin)
        i.channel.shutdown_write()
    code = o.channel.recv_exit_status()
    return code, o.read().decode(), e.read().decode()
