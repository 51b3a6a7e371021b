"""Teardown: delete the run's resource group (all its temporary resources) whatever happened; and the
sweeper's deletion of groups that dead runs left behind (the same deferred wait)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from image_factory.naming import RunNames
from image_factory.operators.base import DEFAULT_CONN_ID, defer_unless_done, event_or_fail, retry_only_transient


class DeleteResourceGroupOperator(BaseOperator):
    """Delete a named resource group (the sweeper's leftovers) and wait deferred until it is gone.

    A group that is already gone is done, not an error.
    """

    template_fields: Sequence[str] = ("resource_group",)
    step = "deletion"

    def __init__(self, *, resource_group: str = "", azure_conn_id: str = DEFAULT_CONN_ID,
                 timeout_seconds: float = 1800.0, poll_interval: float = 15.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resource_group, self.azure_conn_id = resource_group, azure_conn_id
        self.timeout_seconds, self.poll_interval = timeout_seconds, poll_interval

    def group(self, context: Context) -> str:
        return self.resource_group

    def execute(self, context: Context) -> Any:
        from image_factory.pipeline import steps
        from image_factory.triggers.resources import ResourceGroupDeletedTrigger

        group = self.group(context)
        with retry_only_transient(f"{self.step} of {group}"):
            started = steps.begin_teardown(self.azure_conn_id, group)
        if not started:
            self.log.info("Resource group %s does not exist: nothing is left to delete.", group)
            return {"resource_group": group, "deleted": False}
        self.log.info("Deleting resource group %s and everything in it.", group)
        return defer_unless_done(self, ResourceGroupDeletedTrigger(
            azure_conn_id=self.azure_conn_id, resource_group=group, timeout_seconds=self.timeout_seconds,
            poll_interval=self.poll_interval, started_at=time.time(),
        ), "execute_complete", context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        group = self.group(context)
        event_or_fail(f"{self.step} of {group}", event)
        return {"resource_group": group, "deleted": True}


class TeardownOperator(DeleteResourceGroupOperator):
    """The run's own group, named from the run itself, so it works even when planning never finished.

    An import's plan also names a staging blob and a work folder outside that group: given the plan,
    teardown deletes those first."""

    template_fields: Sequence[str] = ("resource_group", "plan")
    step = "teardown"

    def __init__(self, *, image: str, plan: Any = None, poll_interval: float = 3.0, **kwargs: Any) -> None:
        super().__init__(poll_interval=poll_interval, **kwargs)
        self.image, self.plan = image, plan

    def group(self, context: Context) -> str:
        return RunNames.for_run(self.image, context["dag"].dag_id, context["run_id"]).resource_group

    def execute(self, context: Context) -> Any:
        if isinstance(self.plan, dict) and self.plan.get("staging"):
            from image_factory.pipeline import imports

            with retry_only_transient("teardown of the staging blob"):
                self.log.info("Imported disk's leftovers: %s", imports.cleanup(self.plan, self.azure_conn_id))
        return super().execute(context)
