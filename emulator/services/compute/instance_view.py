"""A VM's instanceView: ARM's status list built from the state compute keeps in ``internal``.

Statuses follow Azure's order and wording: ProvisioningState first (``failed/<code>`` with the
error's message when it failed), then OSState/generalized when generalized, then PowerState.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from emulator.core.store import Resource

POWER_DISPLAY = {
    "starting": "VM starting",
    "running": "VM running",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}
PROVISIONING_DISPLAY = {
    "Creating": "Creating",
    "Updating": "Updating",
    "Deleting": "Deleting",
    "Succeeded": "Provisioning succeeded",
}
AGENT_VERSION = {"Linux": "2.12.0.2", "Windows": "2.7.41491.1130"}


def timestamp(ts: float) -> str:
    """Azure's status time format: ISO 8601 with microseconds and ``+00:00``."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds")


def provisioning_status(vm: Resource) -> dict[str, Any]:
    state = vm.properties.get("provisioningState", "Succeeded")
    changed = float(vm.internal.get("state_time") or vm.internal.get("created", 0.0))
    if state == "Failed":
        err = vm.internal.get("error") or {}
        return {
            "code": f"ProvisioningState/failed/{err.get('code', 'InternalError')}",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": err.get("message", ""),
            "time": timestamp(changed),
        }
    out: dict[str, Any] = {
        "code": f"ProvisioningState/{state.lower()}",
        "level": "Info",
        "displayStatus": PROVISIONING_DISPLAY.get(state, state),
    }
    if state == "Succeeded":
        out["time"] = timestamp(changed)
    return out


def power_status(power: str) -> dict[str, Any]:
    return {"code": f"PowerState/{power}", "level": "Info", "displayStatus": POWER_DISPLAY.get(power, power)}


def agent_view(vm: Resource) -> dict[str, Any]:
    """The VM agent reports Ready only while the guest runs; otherwise it is unresponsive."""
    internal = vm.internal
    now = float(internal.get("state_time") or internal.get("created", 0.0))
    if internal.get("power") == "running":
        return {
            "vmAgentVersion": AGENT_VERSION.get(internal.get("os_type", "Linux"), "2.12.0.2"),
            "statuses": [{
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Ready",
                "message": "Guest Agent is running",
                "time": timestamp(now),
            }],
            "extensionHandlers": [],
        }
    return {
        "vmAgentVersion": "Unknown",
        "statuses": [{
            "code": "ProvisioningState/Unavailable",
            "level": "Warning",
            "displayStatus": "Not Ready",
            "message": "VM Agent is unresponsive.",
            "time": timestamp(now),
        }],
        "extensionHandlers": [],
    }


def build(vm: Resource) -> dict[str, Any]:
    """The VirtualMachineInstanceView of one VM."""
    internal = vm.internal
    source = internal.get("source") or {}
    statuses = [provisioning_status(vm)]
    if internal.get("generalized"):
        statuses.append({"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"})
    statuses.append(power_status(internal.get("power", "stopped")))
    view: dict[str, Any] = {}
    spec = internal.get("spec") or {}
    if spec.get("computer_name"):
        view["computerName"] = spec["computer_name"]
    if internal.get("power") == "running":
        if source.get("os_name"):
            view["osName"] = source["os_name"]
        if source.get("os_version"):
            view["osVersion"] = source["os_version"]
    view["vmAgent"] = agent_view(vm)
    disk_name = ((vm.properties.get("storageProfile") or {}).get("osDisk") or {}).get("name")
    if disk_name:
        view["disks"] = [{
            "name": disk_name,
            "statuses": [{
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "time": timestamp(float(internal.get("created", 0.0))),
            }],
        }]
    view["hyperVGeneration"] = source.get("hyper_v_generation", "V1")
    view["statuses"] = statuses
    return view
