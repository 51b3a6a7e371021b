"""One ``GuestRuntime`` in front of several: each VM goes to the runtime that owns its disk.

Compute holds a single runtime (``ctx.extras["guests"]``). With QEMU guests selected the
emulator has two: Linux VMs whose OS disk is a file (``kind == "file"``) run under QEMU,
everything else (Windows, simulated disks) in the simulated runtime. The owner of a VM is
decided at boot from its disk, remembered, and re-derived in ``recover`` from each spec's disk,
so routing survives an emulator restart. VMs the router has never seen (stopped ones after a
restart) are looked up with each runtime's ``knows`` probe, else the default runtime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator.guests.base import GuestRuntime, GuestSpec, RunResult

Probe = Callable[[str], bool]
log = logging.getLogger("emulator.guests")


def disk_kind(disk: dict[str, Any] | None) -> str:
    return str((disk or {}).get("kind") or "simulated")


class GuestRouter:
    """Dispatches per VM to the runtime owning it; see the module docstring."""

    name = "router"

    def __init__(self, runtimes: dict[str, GuestRuntime], *, default: str = "simulated",
                 by_disk_kind: dict[str, str] | None = None, knows: dict[str, Probe] | None = None) -> None:
        if default not in runtimes:
            raise ValueError(f"default runtime {default!r} is not among {sorted(runtimes)}")
        self.runtimes = runtimes
        self.default = default
        self.by_disk_kind = by_disk_kind or {"file": "qemu", "simulated": "simulated"}
        self.knows = knows or {}
        self.owners: dict[str, str] = {}  # vm id (lower case) -> runtime name
        self._lock = threading.Lock()

    @property
    def simulated(self) -> Any:
        """The simulated runtime, for the ``/_emulator/guests`` endpoints (None when absent)."""
        return self.runtimes.get("simulated")

    def owner_for(self, spec: GuestSpec) -> str:
        """Windows always runs simulated; Linux by the disk's kind, else the default runtime."""
        if spec.os_type == "Windows" and "simulated" in self.runtimes:
            return "simulated"
        name = self.by_disk_kind.get(disk_kind(spec.disk), self.default)
        if name not in self.runtimes:
            raise ValueError(f"VM {spec.vm_id} boots a '{disk_kind(spec.disk)}' disk, but the {name} guest "
                             "runtime is not enabled in this emulator (LOCAL_AZURE_LINUX_RUNTIME)")
        return name

    def _remember(self, vm_id: str, name: str) -> None:
        with self._lock:
            self.owners[vm_id.lower()] = name

    def _owner(self, vm_id: str) -> GuestRuntime:
        with self._lock:
            name = self.owners.get(vm_id.lower())
        if name is None:
            name = next((n for n, probe in self.knows.items() if n in self.runtimes and _safe(probe, vm_id)),
                        self.default)
            self._remember(vm_id, name)
        return self.runtimes[name]

    # GuestRuntime -------------------------------------------------------------------------------
    def boot(self, spec: GuestSpec) -> None:
        name = self.owner_for(spec)
        self._remember(spec.vm_id, name)
        self.runtimes[name].boot(spec)

    def shutdown(self, vm_id: str, *, force: bool = False) -> None:
        self._owner(vm_id).shutdown(vm_id, force=force)

    def destroy(self, vm_id: str) -> None:
        """The owner frees the VM; unknown VMs are destroyed everywhere (idempotent, leaves nothing)."""
        with self._lock:
            name = self.owners.pop(vm_id.lower(), None)
        targets = [self.runtimes[name]] if name in self.runtimes else list(self.runtimes.values())
        for rt in targets:
            rt.destroy(vm_id)

    def capture(self, vm_id: str) -> dict[str, Any]:
        return self._owner(vm_id).capture(vm_id)

    def release_disk(self, disk: dict[str, Any]) -> None:
        name = self.by_disk_kind.get(disk_kind(disk))
        if name in self.runtimes:
            self.runtimes[name].release_disk(disk)

    def run_command(self, vm_id: str, script: list[str], timeout: float) -> RunResult:
        return self._owner(vm_id).run_command(vm_id, script, timeout)

    def is_running(self, vm_id: str) -> bool:
        return self._owner(vm_id).is_running(vm_id)

    def recover(self, vm_ids: dict[str, GuestSpec]) -> None:
        """Split the running VMs by owner (from their disks) and let every runtime recover its share."""
        shares: dict[str, dict[str, GuestSpec]] = {n: {} for n in self.runtimes}
        for vm_id, spec in vm_ids.items():
            try:
                name = self.owner_for(spec)
            except ValueError as exc:  # its runtime is no longer enabled: compute finds it not running
                log.warning("cannot recover guest: %s", exc)
                continue
            self._remember(vm_id, name)
            shares[name][vm_id] = spec
        for name, rt in self.runtimes.items():  # every runtime, also with none: QEMU stops orphans then
            rt.recover(shares[name])


def _safe(probe: Probe, vm_id: str) -> bool:
    try:
        return bool(probe(vm_id))
    except Exception:
        return False


if TYPE_CHECKING:  # mypy checks that the router satisfies compute's protocol
    def _conforms(rt: GuestRouter) -> GuestRuntime:
        return rt
