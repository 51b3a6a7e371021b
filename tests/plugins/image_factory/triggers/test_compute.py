"""VirtualMachinePowerStateTrigger and GuestPortTrigger against the local Azure's simulated guests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from image_factory.triggers.compute import GuestPortTrigger, VirtualMachinePowerStateTrigger
from tests.emulator.services.compute.conftest import Kit
from tests.localazure import free_port
from tests.plugins.image_factory.triggers.conftest import first_event, round_trip


@pytest.fixture
def kit(arm: Any, group: str, location: str) -> Kit:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    public = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return Kit(arm, group, location, public)


def _power_trigger(conn: str, group: str, vm: str, targets: list[str], **kw: Any) -> VirtualMachinePowerStateTrigger:
    args: dict[str, Any] = {"timeout_seconds": 120, "poll_interval": 0.05, **kw}
    return VirtualMachinePowerStateTrigger(conn, group, vm, targets, **args)


def _public_ip(kit: Kit, vm: str) -> str:
    return str(kit.arm.network.public_ip_addresses.get(kit.group, f"{vm}-nic-ip").ip_address)


# power state ---------------------------------------------------------------------------
def test_power_state_reached_after_deallocate(kit, azure_conn):
    kit.linux_vm("vm")
    kit.compute.virtual_machines.begin_deallocate(kit.group, "vm")  # not waited for: the trigger waits
    event = first_event(_power_trigger(azure_conn, kit.group, "vm", ["PowerState/deallocated"]))
    assert event["status"] == "success", event
    assert event["power_state"] == "deallocated" and event["vm_name"] == "vm"
    assert kit.power("vm") == "PowerState/deallocated"


def test_running_vm_times_out_with_the_deadline_in_the_message(kit, azure_conn):
    kit.linux_vm("vm")
    trigger = _power_trigger(
        azure_conn, kit.group, "vm", ["stopped", "deallocated"], timeout_seconds=10, started_at=time.time() - 100
    )  # a restarted triggerer keeps the original clock
    event = first_event(round_trip(trigger))
    assert event["status"] == "error", event
    assert "Timed out after 10 s" in event["message"] and "vm" in event["message"]
    assert event["power_state"] == "running"


def test_failed_provisioning_is_an_error_at_once_with_azure_message(kit, azure_conn, faults):
    faults.add_fault(
        match="Microsoft.Compute/virtualMachines/write",
        kind="lro_failure",
        count=1,
        code="OSProvisioningTimedOut",
        message="Injected: the guest never reported ready.",
    )
    with pytest.raises(HttpResponseError):
        kit.linux_vm("vm")
    # an hour's timeout: only the Failed state can end this wait
    event = first_event(_power_trigger(azure_conn, kit.group, "vm", ["running"], timeout_seconds=3600))
    assert event["status"] == "error", event
    assert "provisioning failed" in event["message"]
    assert "Injected: the guest never reported ready." in event["message"]


def test_a_vm_that_is_gone_is_an_error_at_once(kit, azure_conn):
    event = first_event(_power_trigger(azure_conn, kit.group, "no-such-vm", ["running"], timeout_seconds=3600))
    assert event["status"] == "error" and "does not exist" in event["message"]


def test_a_broken_connection_becomes_an_error_event(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRIGGER_NOSUB", '{"conn_type": "azure", "extra": {"endpoint": "https://127.0.0.1:1"}}'
    )
    event = first_event(_power_trigger("trigger_nosub", "rg", "vm", ["running"]))
    assert event["status"] == "error" and "'subscriptionId'" in event["message"]


def test_power_state_trigger_serializes_primitives():
    trigger = VirtualMachinePowerStateTrigger(
        "conn", "rg", "vm", ["PowerState/Stopped"], timeout_seconds=600, poll_interval=10, started_at=1_700_000_000.0
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "image_factory.triggers.compute.VirtualMachinePowerStateTrigger"
    assert kwargs["target_states"] == ["stopped"] and kwargs["started_at"] == 1_700_000_000.0
    round_trip(trigger)


# guest ports ---------------------------------------------------------------------------
def test_ssh_port_trigger_waits_for_the_banner(kit):
    kit.linux_vm("vm")
    event = first_event(GuestPortTrigger(_public_ip(kit, "vm"), 22, "ssh", timeout_seconds=120, poll_interval=0.1))
    assert event["status"] == "success", event
    assert event["answer"].startswith("SSH-2.0-") and event["port"] == 22


def test_winrm_https_port_trigger_gets_an_http_answer(kit):
    kit.windows_vm("win")
    trigger = GuestPortTrigger(_public_ip(kit, "win"), 5986, "winrm", timeout_seconds=120, poll_interval=0.1)
    assert trigger.tls  # 5986 is WinRM over HTTPS
    event = first_event(trigger)
    assert event["status"] == "success", event
    assert event["answer"].startswith("HTTP/1.")


def test_closed_port_times_out_naming_host_and_port():
    port = free_port()  # nothing listens there
    trigger = GuestPortTrigger(
        "127.0.0.1", port, "ssh", timeout_seconds=5, poll_interval=0.05, started_at=time.time() - 60
    )
    event = first_event(round_trip(trigger))
    assert event["status"] == "error", event
    assert f"127.0.0.1:{port}" in event["message"] and "Timed out after 5 s" in event["message"]


def test_a_listener_without_ssh_banner_is_not_ready():
    """A port that accepts connections but speaks something else is not SSH yet."""

    async def scenario() -> tuple[bool, str]:
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 not ssh\r\n" * 25)
            await writer.drain()
            await reader.read()  # stay open until the probe hangs up
            writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await GuestPortTrigger("127.0.0.1", port, "ssh", timeout_seconds=5).probe()

    ready, seen = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert not ready and seen == "no SSH banner in the first lines"


def test_guest_port_trigger_rejects_unknown_protocols():
    with pytest.raises(ValueError, match="protocol"):
        GuestPortTrigger("h", 22, "telnet", timeout_seconds=1)
