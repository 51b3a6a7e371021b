"""Smoke test in one region: a VM from the exact new version, checked, then deleted whatever the result."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from image_factory.errors import SmokeTestError
from image_factory.operators.base import DEFAULT_CONN_ID, defer_unless_done, event_or_fail, retry_only_transient
from image_factory.operators.compute import wait_began


class SmokeTestOperator(BaseOperator):
    """Create the smoke VM, defer until it answers, run the checks, delete the VM (mapped per region)."""

    template_fields: Sequence[str] = ("plan", "capture", "region")

    def __init__(self, *, plan: Any, capture: Any, region: Any, azure_conn_id: str = DEFAULT_CONN_ID,
                 timeout_seconds: float = 900.0, poll_interval: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.capture, self.region, self.azure_conn_id = plan, capture, region, azure_conn_id
        self.timeout_seconds, self.poll_interval = timeout_seconds, poll_interval

    def _build(self) -> Any:
        from image_factory.pipeline.build import Build

        return Build.from_task(self.plan, self.azure_conn_id)

    def execute(self, context: Context) -> Any:
        from image_factory.pipeline import steps
        from image_factory.triggers.compute import VirtualMachinePowerStateTrigger

        image_id = self.capture.get("version_id") or self.capture.get("managed_image_id")
        with retry_only_transient(f"smoke VM in {self.region}"):
            b = self._build()
            smoke = steps.smoke_create(b, self.region, image_id)
        self.log.info("Smoke VM %s in %s from %s (create call took %.1f s)", smoke["vm"], self.region, image_id,
                      smoke["seconds"])
        context["ti"].xcom_push(key="create_seconds", value=smoke["seconds"])
        return defer_unless_done(self, VirtualMachinePowerStateTrigger(
            azure_conn_id=self.azure_conn_id, resource_group=b.resource_group, vm_name=smoke["vm"],
            target_states=["running"], timeout_seconds=self.timeout_seconds, poll_interval=self.poll_interval,
            started_at=time.time(),
        ), "vm_running", context)

    def vm_running(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        from image_factory.pipeline import steps
        from image_factory.triggers.compute import GuestPortTrigger

        b = self._build()
        try:
            event_or_fail(f"smoke VM in {self.region} did not start", event)
        except Exception:
            with retry_only_transient(f"deleting the smoke VM in {self.region}"):
                steps.smoke_delete(b, steps.smoke_vm(b, self.region)["vm"])
            raise
        smoke = steps.smoke_vm(b, self.region)
        port, protocol = steps.guest_port(b)
        began = wait_began(event)
        return defer_unless_done(self, GuestPortTrigger(
            host=smoke["address"], port=port, protocol=protocol,
            timeout_seconds=self.timeout_seconds + (time.time() - began), poll_interval=self.poll_interval,
            started_at=began,
        ), "execute_complete", context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from image_factory.pipeline import steps

        with retry_only_transient(f"smoke VM in {self.region}"):
            b = self._build()
            smoke = steps.smoke_vm(b, self.region)
        try:
            event_or_fail(f"smoke VM in {self.region} did not come up", event)
            with retry_only_transient(f"smoke checks in {self.region}"):
                checked = time.monotonic()
                result = steps.smoke_check(b, smoke)
                result["check_seconds"] = round(time.monotonic() - checked, 3)
                result["boot_seconds"] = (event or {}).get("seconds")
                result["create_seconds"] = context["ti"].xcom_pull(task_ids=self.task_id, key="create_seconds",
                                                                   map_indexes=context["ti"].map_index)
        finally:
            with retry_only_transient(f"deleting the smoke VM in {self.region}"):
                steps.smoke_delete(b, smoke["vm"])
        for check in result["checks"]:
            self.log.info("%s %s: %s", "PASS" if check["passed"] else "FAIL", check["name"], check["detail"])
        if not result["passed"]:
            failed = [c["name"] for c in result["checks"] if not c["passed"]]
            with retry_only_transient(f"smoke test in {self.region}"):  # a failed check is final, not retried
                raise SmokeTestError(f"smoke test in {self.region} failed: {', '.join(failed)}")
        return result
