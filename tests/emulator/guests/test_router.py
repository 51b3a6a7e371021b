"""The guest router: each VM goes to the runtime owning its disk, also after a restart."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.guests.base import GuestSpec, RunResult
from emulator.guests.router import GuestRouter


class Fake:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[Any, ...]] = []
        self.running: set[str] = set()
        self.recovered: dict[str, GuestSpec] | None = None

    def boot(self, spec: GuestSpec) -> None:
        self.calls.append(("boot", spec.vm_id))
        self.running.add(spec.vm_id)

    def shutdown(self, vm_id: str, *, force: bool = False) -> None:
        self.calls.append(("shutdown", vm_id, force))

    def destroy(self, vm_id: str) -> None:
        self.calls.append(("destroy", vm_id))

    def capture(self, vm_id: str) -> dict[str, Any]:
        self.calls.append(("capture", vm_id))
        return {"kind": self.name, "from": vm_id}

    def release_disk(self, disk: dict[str, Any]) -> None:
        self.calls.append(("release", disk["path"]))

    def run_command(self, vm_id: str, script: list[str], timeout: float) -> RunResult:
        return RunResult(0, f"{self.name}:{vm_id}", "")

    def is_running(self, vm_id: str) -> bool:
        return vm_id in self.running

    def recover(self, vm_ids: dict[str, GuestSpec]) -> None:
        self.recovered = dict(vm_ids)


def spec(vm_id: str, kind: str, os_type: str = "Linux") -> GuestSpec:
    return GuestSpec(vm_id=vm_id, os_type=os_type, address="127.0.0.9", disk={"kind": kind, "path": "/x"})


@pytest.fixture
def fakes() -> tuple[Fake, Fake, GuestRouter]:
    sim, qemu = Fake("simulated"), Fake("file")
    return sim, qemu, GuestRouter({"simulated": sim, "qemu": qemu})  # type: ignore[dict-item]


def test_boot_routes_by_disk_kind_and_windows_stays_simulated(fakes: tuple[Fake, Fake, GuestRouter]) -> None:
    sim, qemu, router = fakes
    router.boot(spec("/vm/LINUX", "file"))
    router.boot(spec("/vm/sim", "simulated"))
    router.boot(spec("/vm/win", "file", os_type="Windows"))
    assert qemu.calls == [("boot", "/vm/LINUX")]
    assert sim.calls == [("boot", "/vm/sim"), ("boot", "/vm/win")]


def test_later_calls_follow_the_owner(fakes: tuple[Fake, Fake, GuestRouter]) -> None:
    sim, qemu, router = fakes
    router.boot(spec("/vm/a", "file"))
    router.shutdown("/VM/A", force=True)  # ARM ids compare case-insensitively
    assert router.capture("/vm/a") == {"kind": "file", "from": "/vm/a"}
    assert router.run_command("/vm/a", ["true"], 5).stdout == "file:/vm/a"
    assert router.is_running("/vm/a")
    router.destroy("/vm/a")
    assert qemu.calls == [("boot", "/vm/a"), ("shutdown", "/VM/A", True), ("capture", "/vm/a"), ("destroy", "/vm/a")]
    assert sim.calls == []


def test_release_disk_by_kind(fakes: tuple[Fake, Fake, GuestRouter]) -> None:
    sim, qemu, router = fakes
    router.release_disk({"kind": "file", "path": "/d/1.vhd"})
    router.release_disk({"kind": "simulated", "path": "/d/2"})
    router.release_disk({"kind": "unknown", "path": "/d/3"})
    assert qemu.calls == [("release", "/d/1.vhd")]
    assert sim.calls == [("release", "/d/2")]


def test_recover_splits_by_disk_and_keeps_routing() -> None:
    sim, qemu = Fake("simulated"), Fake("file")
    router = GuestRouter({"simulated": sim, "qemu": qemu})  # type: ignore[dict-item]  # a fresh emulator
    router.recover({"/vm/q": spec("/vm/q", "file"), "/vm/s": spec("/vm/s", "simulated")})
    assert qemu.recovered is not None and set(qemu.recovered) == {"/vm/q"}
    assert sim.recovered is not None and set(sim.recovered) == {"/vm/s"}
    router.shutdown("/vm/q")
    assert qemu.calls == [("shutdown", "/vm/q", False)]


def test_unknown_vm_uses_probe_then_default() -> None:
    sim, qemu = Fake("simulated"), Fake("file")
    router = GuestRouter({"simulated": sim, "qemu": qemu},  # type: ignore[dict-item]
                         knows={"qemu": lambda vm_id: vm_id == "/vm/stopped-qemu"})
    router.capture("/vm/stopped-qemu")  # deallocated before a restart: not in recover's specs
    router.capture("/vm/other")
    assert qemu.calls == [("capture", "/vm/stopped-qemu")]
    assert sim.calls == [("capture", "/vm/other")]


def test_destroy_of_unknown_vm_reaches_every_runtime(fakes: tuple[Fake, Fake, GuestRouter]) -> None:
    sim, qemu, router = fakes
    router.destroy("/vm/ghost")
    assert sim.calls == [("destroy", "/vm/ghost")] and qemu.calls == [("destroy", "/vm/ghost")]


def test_file_disk_without_qemu_is_a_clear_error() -> None:
    router = GuestRouter({"simulated": Fake("simulated")})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="LOCAL_AZURE_LINUX_RUNTIME"):
        router.boot(spec("/vm/a", "file"))
