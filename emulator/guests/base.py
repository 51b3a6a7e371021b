"""The contract between the compute service (ARM's view of a VM) and a guest runtime (the machine).

Compute calls the runtime from request threads; the runtime reports what the machine did
(booted, shut itself down, deprovisioned ...) through ``GuestEvents``, which compute implements
to move provisioningState / PowerState and settle pending operations. ARM state therefore
follows the guest, never a timer of compute's own.

A *disk* is a JSON-serialisable descriptor that compute stores on VMs, managed images and gallery
image versions and passes back to the runtime to boot from. The simulated runtime's disk is
``{"kind": "simulated", "os": {...guest filesystem facts...}}``; a file-backed runtime will use
``{"kind": "file", "path": ...}``. Compute never looks inside a disk beyond ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class GuestSpec:
    """What a guest needs to boot, taken from the VM's ARM body at create time."""

    vm_id: str
    os_type: str  # "Linux" | "Windows"
    address: str  # the loopback address the public IP resource reports; guest services listen here
    disk: dict[str, Any]  # descriptor of the OS disk to boot (copy-on-write: the runtime never changes the source)
    computer_name: str | None = None  # None for a specialized image: the disk keeps its own identity
    admin_username: str | None = None
    admin_password: str | None = None  # secret: never logged
    ssh_public_keys: list[str] = field(default_factory=list)
    custom_data: str | None = None  # base64, as in osProfile.customData
    size: str = "Standard_B2s"


@dataclass
class RunResult:
    """RunCommand's answer: the guest's exit code, stdout and stderr."""

    exit_code: int
    stdout: str
    stderr: str


class GuestEvents(Protocol):
    """Implemented by compute: the runtime calls these from any thread."""

    def booted(self, vm_id: str) -> None: ...
    def stopped(self, vm_id: str) -> None: ...  # the guest is off (shut itself down or was powered off)
    def failed(self, vm_id: str, code: str, message: str) -> None: ...  # could not boot


class GuestRuntime(Protocol):
    """A machine behind a VM. Calls return quickly; progress arrives through ``GuestEvents``."""

    name: str

    def boot(self, spec: GuestSpec) -> None:
        """Create (first call) or start (later calls) the machine; ``booted`` follows when it is up."""

    def shutdown(self, vm_id: str, *, force: bool = False) -> None:
        """ACPI-style shutdown (forced after a timeout, or at once with ``force``); ``stopped`` follows."""

    def destroy(self, vm_id: str) -> None:
        """Stop it if running and free everything it holds (process, overlay disk). Idempotent."""

    def capture(self, vm_id: str) -> dict[str, Any]:
        """A new disk descriptor holding the stopped machine's OS disk as it is now."""

    def release_disk(self, disk: dict[str, Any]) -> None:
        """Free a captured disk (its image or version was deleted). Idempotent."""

    def run_command(self, vm_id: str, script: list[str], timeout: float) -> RunResult:
        """Run a shell script inside the guest without SSH (RunShellScript / RunPowerShellScript)."""

    def is_running(self, vm_id: str) -> bool: ...

    def recover(self, vm_ids: dict[str, GuestSpec]) -> None:
        """After an emulator restart: adopt or restart the guests of VMs ARM says are running."""
