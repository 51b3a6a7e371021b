"""The VM state machine in-process, with a guest runtime the test drives by hand.

The SDK tests run against instant simulated guests, where the in-between states (starting,
stopping, deallocating) pass too fast to see; here each guest event fires when the test says,
so every transition and the operation it settles can be asserted. Also ``capture_source``, the
function other services call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.lifecycle import remove
from emulator.core.store import Resource
from emulator.guests.base import GuestSpec, RunResult
from emulator.server import make_context
from emulator.services.compute import instance_view, models, power, runcommand, runtime
from emulator.services.resources.models import put_group

pytestmark = pytest.mark.guests("simulated")

GROUP = "rg"
LOCATION = "westeurope"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDOvbkg7UJZzEf5pE0eQwn9z0Bd6xkhWwBSdN7f3N6nF test"


class ManualRuntime:
    """A GuestRuntime that records calls and reports events only when told to."""

    name = "manual"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.running: set[str] = set()
        self.specs: dict[str, GuestSpec] = {}

    def boot(self, spec: GuestSpec) -> None:
        self.calls.append(("boot", spec))
        self.specs[spec.vm_id] = spec

    def shutdown(self, vm_id: str, *, force: bool = False) -> None:
        self.calls.append(("shutdown", (vm_id, force)))

    def destroy(self, vm_id: str) -> None:
        self.calls.append(("destroy", vm_id))
        self.running.discard(vm_id)

    def capture(self, vm_id: str) -> dict[str, Any]:
        self.calls.append(("capture", vm_id))
        return {"kind": "manual", "from": vm_id}

    def release_disk(self, disk: dict[str, Any]) -> None:
        self.calls.append(("release", disk))

    def run_command(self, vm_id: str, script: list[str], timeout: float) -> RunResult:
        return RunResult(0, "out\n", "")

    def is_running(self, vm_id: str) -> bool:
        return vm_id in self.running

    def recover(self, vm_ids: dict[str, GuestSpec]) -> None:
        self.calls.append(("recover", sorted(vm_ids)))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class Env:
    def __init__(self, ctx: Context, rt: ManualRuntime) -> None:
        self.ctx = ctx
        self.rt = rt
        self.events = runtime.install_events(ctx)

    def nic(self, name: str = "nic") -> str:
        rid = f"/subscriptions/{self.ctx.subscription}/resourceGroups/{GROUP}/providers/Microsoft.Network/networkInterfaces/{name}"
        with self.ctx.store.tx():
            self.ctx.store.put(Resource(id=rid, type="Microsoft.Network/networkInterfaces", body={
                "id": rid, "name": name, "type": "Microsoft.Network/networkInterfaces", "location": LOCATION,
                "properties": {"ipConfigurations": [], "provisioningState": "Succeeded"}}))
        return rid

    def create(self, name: str = "vm", fail_with: dict[str, str] | None = None, **os_disk: Any) -> tuple[str, str]:
        body = {"location": LOCATION, "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {"imageReference": {"publisher": "Debian", "offer": "debian-12", "sku": "12",
                                                  "version": "latest"},
                               "osDisk": {"createOption": "FromImage", **os_disk}},
            "osProfile": {"computerName": name, "adminUsername": "azureuser", "adminPassword": "Secret-Pa55",
                          "linuxConfiguration": {"ssh": {"publicKeys": [{"keyData": KEY}]}}},
            "networkProfile": {"networkInterfaces": [{"id": self.nic(f"{name}-nic")}]},
        }}
        with self.ctx.store.tx():
            vm, created, op = models.put_vm(self.ctx, GROUP, name, body, {}, fail_with)
        assert created
        return vm.id, op

    def vm(self, vm_id: str) -> Resource:
        found = self.ctx.store.get(vm_id)
        assert found is not None
        return found

    def codes(self, vm_id: str) -> list[str]:
        return [s["code"] for s in instance_view.build(self.vm(vm_id))["statuses"]]

    def op(self, op_id: str) -> dict[str, Any]:
        found = lro.status_body(self.ctx, op_id)
        assert found is not None
        return found[1]

    def action(self, vm_id: str, action: str, **kw: Any) -> str:
        with self.ctx.store.tx():
            op, _ = power.begin_action(self.ctx, GROUP, vm_id.rsplit("/", 1)[-1], action, None, **kw)
        return op


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    ctx = make_context(tmp_path, time_factor=0)
    rt = ManualRuntime()
    ctx.extras["guests"] = rt
    with ctx.store.tx():
        put_group(ctx, GROUP, {"location": LOCATION}, {})
    yield Env(ctx, rt)
    ctx.store.close()


def test_create_waits_for_the_guest_and_keeps_the_password_out_of_the_store(env):
    vm_id, op = env.create()
    assert env.codes(vm_id) == ["ProvisioningState/creating", "PowerState/starting"]
    assert env.op(op)["status"] == "InProgress"
    boot = env.rt.calls[-1]
    assert boot[0] == "boot" and boot[1].admin_password == "Secret-Pa55" and boot[1].computer_name == "vm"
    assert "Secret-Pa55" not in str(env.vm(vm_id).body) + str(env.vm(vm_id).internal)
    env.events.booted(vm_id)
    assert env.op(op)["status"] == "Succeeded"
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/running"]
    view = instance_view.build(env.vm(vm_id))
    assert view["computerName"] == "vm" and view["osName"] == "debian"
    assert view["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"


def test_power_off_deallocate_start_restart_transitions(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)

    op = env.action(vm_id, "powerOff", skip_shutdown=True)
    assert env.rt.calls[-1] == ("shutdown", (vm_id, True))
    assert env.codes(vm_id) == ["ProvisioningState/updating", "PowerState/stopping"]
    env.events.stopped(vm_id)
    assert env.op(op)["status"] == "Succeeded"
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/stopped"]

    op = env.action(vm_id, "deallocate")  # already stopped: no guest involved, ARM deallocates
    assert env.codes(vm_id) == ["ProvisioningState/updating", "PowerState/deallocating"]
    lro.settle(env.ctx, op)
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/deallocated"]

    op = env.action(vm_id, "start")
    assert env.codes(vm_id) == ["ProvisioningState/updating", "PowerState/starting"]
    assert env.rt.calls[-1][0] == "boot" and env.rt.calls[-1][1].admin_password is None
    env.events.booted(vm_id)
    assert env.op(op)["status"] == "Succeeded"
    assert env.codes(vm_id)[-1] == "PowerState/running"

    op = env.action(vm_id, "restart")
    assert env.codes(vm_id)[-1] == "PowerState/stopping"
    env.events.stopped(vm_id)
    assert env.codes(vm_id)[-1] == "PowerState/starting" and env.rt.calls[-1][0] == "boot"
    env.events.booted(vm_id)
    assert env.op(op)["status"] == "Succeeded"
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/running"]

    op = env.action(vm_id, "deallocate")  # running: the guest shuts down first
    assert env.rt.calls[-1] == ("shutdown", (vm_id, False))
    assert env.codes(vm_id)[-1] == "PowerState/deallocating"
    env.events.stopped(vm_id)
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/deallocated"]
    assert env.op(op)["status"] == "Succeeded"


def test_self_shutdown_and_failed_boot(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)
    env.events.stopped(vm_id)  # `shutdown -h now` inside the guest
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/stopped"]

    other, op = env.create("other")
    env.events.failed(other, "OSProvisioningTimedOut", "The guest did not come up.")
    status = env.op(op)
    assert status["status"] == "Failed" and status["error"]["code"] == "OSProvisioningTimedOut"
    assert env.vm(other).properties["provisioningState"] == "Failed"
    view = instance_view.build(env.vm(other))
    assert view["statuses"][0]["code"] == "ProvisioningState/failed/OSProvisioningTimedOut"
    assert view["statuses"][0]["message"] == "The guest did not come up."


def test_a_newer_action_preempts_the_pending_one(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)
    stop = env.action(vm_id, "powerOff")
    start = env.action(vm_id, "start")
    assert env.op(stop)["error"]["code"] == "OperationPreempted"
    env.events.booted(vm_id)
    assert env.op(start)["status"] == "Succeeded"
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "PowerState/running"]
    # an action the VM is already in answers with an operation that is done
    again = env.action(vm_id, "start")
    lro.settle_due(env.ctx)  # what the server's clock does before every request
    assert env.op(again)["status"] == "Succeeded"


def test_generalize_rules(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)
    with pytest.raises(ArmError) as err:
        with env.ctx.store.tx():
            power.generalize(env.ctx, GROUP, "vm")
    assert (err.value.status, err.value.code) == (409, "OperationNotAllowed")
    assert err.value.message == "Operation 'generalize' is not allowed on VM 'vm' since the VM is running."
    env.action(vm_id, "powerOff")
    env.events.stopped(vm_id)
    with env.ctx.store.tx():
        power.generalize(env.ctx, GROUP, "vm")
    assert env.codes(vm_id) == ["ProvisioningState/succeeded", "OSState/generalized", "PowerState/stopped"]
    with pytest.raises(ArmError) as err:
        env.action(vm_id, "start")
    assert err.value.message == "Operation 'start' is not allowed on VM 'vm' since the VM is generalized."


def test_capture_source(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)
    with pytest.raises(ArmError) as err:
        models.capture_source(env.ctx, vm_id)
    assert (err.value.status, err.value.code) == (409, "OperationNotAllowed")
    assert "requires the Virtual Machine 'vm' to be stopped or deallocated" in err.value.message
    env.action(vm_id, "powerOff")
    env.events.stopped(vm_id)
    got = models.capture_source(env.ctx, vm_id)
    assert got == {"disk": {"kind": "manual", "from": vm_id}, "os_type": "Linux", "os_state": "Specialized",
                   "hyper_v_generation": "V1", "location": LOCATION, "size_gb": 30, "os_name": "debian",
                   "os_version": got["os_version"]}
    with env.ctx.store.tx():
        power.generalize(env.ctx, GROUP, "vm")
    assert models.capture_source(env.ctx, vm_id)["os_state"] == "Generalized"
    missing = vm_id.rsplit("/", 1)[0] + "/nope"
    with pytest.raises(ArmError) as err:
        models.capture_source(env.ctx, missing)
    assert (err.value.status, err.value.code) == (404, "ResourceNotFound")
    with pytest.raises(ArmError) as err:
        models.capture_source(env.ctx, missing.replace(f"/resourceGroups/{GROUP}/", "/resourceGroups/gone/"))
    assert err.value.code == "ResourceGroupNotFound"


def test_removal_destroys_the_guest_and_detaches(env):
    vm_id, _ = env.create(deleteOption="Delete")
    env.events.booted(vm_id)
    vm = env.vm(vm_id)
    disk_id = vm.internal["os_disk_id"]
    nic_id = vm.internal["nics"][0]
    assert env.ctx.store.get(nic_id).properties["virtualMachine"]["id"] == vm_id
    with env.ctx.store.tx():
        remove(env.ctx, vm)
    assert ("destroy", vm_id) in env.rt.calls
    assert env.ctx.store.get(vm_id) is None and env.ctx.store.get(disk_id) is None
    assert "virtualMachine" not in env.ctx.store.get(nic_id).properties


def test_injected_failure_never_boots(env):
    vm_id, op = env.create(fail_with={"code": "AllocationFailed", "message": "No capacity."})
    assert "boot" not in env.rt.names()
    lro.settle(env.ctx, op)
    assert env.op(op)["error"] == {"code": "AllocationFailed", "message": "No capacity."}
    assert env.codes(vm_id) == ["ProvisioningState/failed/AllocationFailed", "PowerState/deallocated"]


def test_recovery_hands_running_guests_to_a_new_runtime(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)
    stopping, _ = env.create("stopping")
    env.events.booted(stopping)
    stop = env.action(stopping, "powerOff")  # the emulator goes down before the guest reports stopped
    fresh = ManualRuntime()
    env.ctx.extras["guests"] = fresh
    runtime.find(env.ctx)
    assert fresh.calls == [("recover", [vm_id])]
    assert env.op(stop)["status"] == "Succeeded"  # the new runtime has no such guest running: it is off
    assert env.codes(stopping) == ["ProvisioningState/succeeded", "PowerState/stopped"]


def test_run_command_through_the_runtime_and_orphans_after_a_restart(env):
    vm_id, _ = env.create()
    env.events.booted(vm_id)
    with env.ctx.store.tx():
        op, _ = runcommand.run_command(env.ctx, GROUP, "vm", {"commandId": "RunShellScript", "script": ["true"]}, None)
    deadline = time.time() + 5
    while env.op(op)["status"] == "InProgress" and time.time() < deadline:
        time.sleep(0.01)
    assert env.op(op)["properties"]["output"]["value"][0]["message"] == "Enable succeeded: \n[stdout]\nout\n\n[stderr]\n"
    orphan = lro.start(env.ctx, provider="compute", location=LOCATION, handler=runcommand.HANDLER, args={},
                       delay=None)
    runcommand.fail_orphans(env.ctx)
    assert env.op(orphan)["error"]["code"] == "VMAgentStatusCommunicationError"
