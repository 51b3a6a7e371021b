"""Compute steps that wait: for a guest to answer, for a VM to stop. Both defer to the triggerer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from image_factory.operators.base import DEFAULT_CONN_ID, defer_unless_done, event_or_fail, retry_only_transient


def wait_began(event: dict[str, Any] | None) -> float:
    """When a two-part wait (power state, then port) began: the second part's clock continues the first's, so
    its event's ``seconds`` is the whole wait, as the stage timings report it."""
    return time.time() - float((event or {}).get("seconds") or 0.0)


class WaitForGuestOperator(BaseOperator):
    """Defer until the build VM runs and its SSH (or WinRM) answers, then pin its SSH host key through ARM."""

    template_fields: Sequence[str] = ("plan", "vm")

    def __init__(self, *, plan: Any, vm: Any, azure_conn_id: str = DEFAULT_CONN_ID,
                 timeout_seconds: float = 900.0, poll_interval: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.vm, self.azure_conn_id = plan, vm, azure_conn_id
        self.timeout_seconds, self.poll_interval = timeout_seconds, poll_interval

    def execute(self, context: Context) -> Any:
        from image_factory.triggers.compute import VirtualMachinePowerStateTrigger

        return defer_unless_done(self, VirtualMachinePowerStateTrigger(
            azure_conn_id=self.azure_conn_id, resource_group=self.plan["resource_group"],
            vm_name=self.plan["build_vm"], target_states=["running"], timeout_seconds=self.timeout_seconds,
            poll_interval=self.poll_interval, started_at=time.time(),
        ), "vm_running", context)

    def vm_running(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """The VM exists and runs (its create call was not waited for); now wait for its listener."""
        from image_factory.triggers.compute import GuestPortTrigger

        event_or_fail("build VM provisioning", event)
        began = wait_began(event)
        return defer_unless_done(self, GuestPortTrigger(
            host=self.vm["address"], port=int(self.vm["port"]),
            protocol="winrm" if self.plan["os_type"] == "Windows" else "ssh",
            timeout_seconds=self.timeout_seconds + (time.time() - began), poll_interval=self.poll_interval,
            started_at=began,
        ), "execute_complete", context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from image_factory.pipeline import steps
        from image_factory.pipeline.build import Build

        event_or_fail("wait for guest", event)
        with retry_only_transient("wait for guest"):
            b = Build.from_task(self.plan, self.azure_conn_id)
            host_key = steps.pin_host_key(b, self.plan["build_vm"])
        if host_key:
            self.log.info("Pinned the guest's SSH host key as reported through runCommand: %s", host_key[:60])
        return {"address": self.vm["address"], "port": self.vm["port"], "host_key": host_key,
                "seconds": (event or {}).get("seconds")}


class WaitForPowerStateOperator(BaseOperator):
    """Defer until the build VM reports a stopped power state (the guest shut itself down)."""

    template_fields: Sequence[str] = ("plan",)

    def __init__(self, *, plan: Any, azure_conn_id: str = DEFAULT_CONN_ID,
                 target_states: Sequence[str] = ("stopped", "deallocated"), timeout_seconds: float = 900.0,
                 poll_interval: float = 3.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.azure_conn_id, self.target_states = plan, azure_conn_id, list(target_states)
        self.timeout_seconds, self.poll_interval = timeout_seconds, poll_interval

    def execute(self, context: Context) -> Any:
        from image_factory.triggers.compute import VirtualMachinePowerStateTrigger

        return defer_unless_done(self, VirtualMachinePowerStateTrigger(
            azure_conn_id=self.azure_conn_id, resource_group=self.plan["resource_group"],
            vm_name=self.plan["build_vm"], target_states=self.target_states,
            timeout_seconds=self.timeout_seconds, poll_interval=self.poll_interval, started_at=time.time(),
        ), "execute_complete", context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        got = event_or_fail("wait for the VM to stop", event)
        return {"power_state": got.get("power_state"), "seconds": got.get("seconds")}
