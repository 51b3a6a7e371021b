"""Waits on virtual machines: a power state reached (through ARM), a guest's SSH or WinRM port answering."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TYPE_CHECKING, Any

from image_factory.triggers.polling import PollingTrigger, error_event

if TYPE_CHECKING:
    from image_factory.hooks.arm import AsyncArmClients

SSH = "ssh"
WINRM = "winrm"
WINRM_HTTPS_PORT = 5986
PROBE_TIMEOUT = 10.0  # one connection attempt; the trigger's own deadline is separate
BANNER_LINES = 20  # RFC 4253 lets a server send lines before its identification string


def normalize_power_state(state: str) -> str:
    """``PowerState/running`` or ``running`` → ``running``."""
    return state.rsplit("/", 1)[-1].strip().lower()


async def vm_status(clients: AsyncArmClients, resource_group: str, vm_name: str) -> dict[str, str] | None:
    """provisioning_state, power_state and the provisioning message from the instance view; None if gone."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        view = await clients.compute.virtual_machines.instance_view(resource_group, vm_name)
    except ResourceNotFoundError:
        return None
    status = {"provisioning_state": "unknown", "power_state": "unknown", "message": ""}
    for item in view.statuses or []:
        code = item.code or ""
        if code.startswith("PowerState/"):
            status["power_state"] = normalize_power_state(code)
        elif code.startswith("ProvisioningState/"):
            parts = code.split("/")
            status["provisioning_state"] = parts[1].capitalize()
            status["message"] = item.message or item.display_status or "/".join(parts[2:])
    return status


class VirtualMachinePowerStateTrigger(PollingTrigger):
    """Until the VM's power state is one of ``target_states``; fails at once if provisioning failed or
    the VM is gone, since waiting longer cannot help then."""

    def __init__(
        self,
        azure_conn_id: str,
        resource_group: str,
        vm_name: str,
        target_states: list[str],
        timeout_seconds: float,
        poll_interval: float = 15.0,
        started_at: float | None = None,
    ) -> None:
        super().__init__(timeout_seconds=timeout_seconds, poll_interval=poll_interval, started_at=started_at)
        self.azure_conn_id = azure_conn_id
        self.resource_group = resource_group
        self.vm_name = vm_name
        self.target_states = [normalize_power_state(s) for s in target_states]

    def kwargs(self) -> dict[str, Any]:
        return {
            "azure_conn_id": self.azure_conn_id,
            "resource_group": self.resource_group,
            "vm_name": self.vm_name,
            "target_states": list(self.target_states),
            "timeout_seconds": self.timeout_seconds,
            "poll_interval": self.poll_interval,
            "started_at": self.started_at,
        }

    def describe(self) -> str:
        return f"VM {self.vm_name} (resource group {self.resource_group}) to be {' or '.join(self.target_states)}"

    async def _wait(self) -> dict[str, Any]:
        from image_factory.hooks.arm import AzureResourceManagerHook

        async with AzureResourceManagerHook(self.azure_conn_id).async_clients() as clients:
            while True:
                status = await vm_status(clients, self.resource_group, self.vm_name)
                event = self._judge(status)
                if event is not None:
                    return event
                await self.pause()

    def _judge(self, status: dict[str, str] | None) -> dict[str, Any] | None:
        """The event this poll ends with, or None to keep waiting."""
        if status is None:
            return error_event(
                f"VM {self.vm_name} in resource group {self.resource_group} does not exist "
                f"(deleted?) while waiting for it to be {' or '.join(self.target_states)}."
            )
        if status["provisioning_state"] == "Failed":
            return error_event(
                f"VM {self.vm_name} provisioning failed: {status['message'] or 'no message'}",
                power_state=status["power_state"],
            )
        power, provisioning = status["power_state"], status["provisioning_state"]
        self.log_if_changed(
            "state",
            (power, provisioning),
            "VM %s: power state %s, provisioning %s (waiting for %s)",
            self.vm_name,
            power,
            provisioning,
            "/".join(self.target_states),
        )
        if power in self.target_states:
            return {
                "status": "success",
                "vm_name": self.vm_name,
                "power_state": power,
                "provisioning_state": provisioning,
                "seconds": round(self.elapsed(), 1),
            }
        if self.expired():
            return error_event(
                f"Timed out after {self.timeout_seconds:g} s waiting for {self.describe()}; "
                f"its power state is {power}.",
                power_state=power,
            )
        return None


# guest ports -------------------------------------------------------------------------
def _probe_tls_context() -> ssl.SSLContext:
    """No verification: this only asks whether a listener answers, and sends no credentials."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def probe_ssh(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """(ready, what was seen): ready once the server sends its ``SSH-2.0`` identification."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        for _ in range(BANNER_LINES):
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                return False, "connection closed before the SSH banner"
            text = line.decode("ascii", "replace").strip()
            if text.startswith(("SSH-2.0-", "SSH-1.99-")):
                return True, text
        return False, "no SSH banner in the first lines"
    finally:
        await _close(writer)


async def probe_winrm(host: str, port: int, timeout: float, tls: bool) -> tuple[bool, str]:
    """(ready, what was seen): ready once the WinRM listener answers HTTP (401 without credentials)."""
    context = _probe_tls_context() if tls else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host if tls else None), timeout
    )
    try:
        writer.write(
            f"POST /wsman HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = (await asyncio.wait_for(reader.readline(), timeout)).decode("ascii", "replace").strip()
        if line.startswith("HTTP/1."):
            return True, line
        return False, f"not an HTTP answer: {line[:60]!r}"
    finally:
        await _close(writer)


class GuestPortTrigger(PollingTrigger):
    """Until the guest's SSH (banner) or WinRM (HTTP answer) listener is up on ``host:port``.

    ``tls`` (WinRM only) defaults to on for port 5986.
    """

    def __init__(
        self,
        host: str,
        port: int,
        protocol: str,
        timeout_seconds: float,
        poll_interval: float = 5.0,
        started_at: float | None = None,
        tls: bool | None = None,
    ) -> None:
        super().__init__(timeout_seconds=timeout_seconds, poll_interval=poll_interval, started_at=started_at)
        if protocol not in (SSH, WINRM):
            raise ValueError(f"GuestPortTrigger: protocol must be {SSH!r} or {WINRM!r}, got {protocol!r}.")
        self.host = host
        self.port = int(port)
        self.protocol = protocol
        self.tls = (self.port == WINRM_HTTPS_PORT) if tls is None else bool(tls)

    def kwargs(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "timeout_seconds": self.timeout_seconds,
            "poll_interval": self.poll_interval,
            "started_at": self.started_at,
            "tls": self.tls,
        }

    def describe(self) -> str:
        return f"{self.protocol} on {self.host}:{self.port}"

    async def probe(self) -> tuple[bool, str]:
        timeout = PROBE_TIMEOUT
        try:
            if self.protocol == SSH:
                return await probe_ssh(self.host, self.port, timeout)
            return await probe_winrm(self.host, self.port, timeout, self.tls)
        except (OSError, ValueError) as exc:  # refused, timed out, TLS or a garbled answer: not up yet
            return False, f"{type(exc).__name__}: {exc}".rstrip(": ")

    async def _wait(self) -> dict[str, Any]:
        while True:
            ready, seen = await self.probe()
            if ready:
                return {
                    "status": "success",
                    "host": self.host,
                    "port": self.port,
                    "protocol": self.protocol,
                    "answer": seen,
                    "seconds": round(self.elapsed(), 1),
                }
            self.log_if_changed("probe", seen, "%s not ready yet: %s", self.describe(), seen)
            if self.expired():
                return error_event(
                    f"Timed out after {self.timeout_seconds:g} s waiting for {self.describe()}; last attempt: {seen}",
                    host=self.host,
                    port=self.port,
                )
            await self.pause()
