"""Replication: defer while Azure copies the new version into every target region."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from image_factory.operators.base import DEFAULT_CONN_ID, defer_unless_done, event_or_fail


class WaitForReplicationOperator(BaseOperator):
    """Per-region replication progress in the task log; each region has its own deadline."""

    template_fields: Sequence[str] = ("plan",)

    def __init__(self, *, plan: Any, azure_conn_id: str = DEFAULT_CONN_ID, region_timeout_seconds: float = 3600.0,
                 poll_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.azure_conn_id = plan, azure_conn_id
        self.region_timeout_seconds, self.poll_interval = region_timeout_seconds, poll_interval

    def execute(self, context: Context) -> Any:
        from image_factory.pipeline.build import load_definition
        from image_factory.triggers.gallery import ReplicationTrigger

        d = load_definition(self.plan["image"])
        if not d.gallery_version:
            return {"regions": {}, "skipped": "no gallery version in this definition's outputs"}
        return defer_unless_done(self, ReplicationTrigger(
            azure_conn_id=self.azure_conn_id, resource_group=d.gallery_resource_group, gallery=d.gallery_name,
            definition=d.definition, version=self.plan["version"],
            region_timeout_seconds=self.region_timeout_seconds, poll_interval=self.poll_interval,
            started_at=time.time(),
        ), "execute_complete", context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        got = event_or_fail("replication", event)
        for region, state in sorted((got.get("regions") or {}).items()):
            self.log.info("replica in %s: %s", region, state)
        return {"regions": got.get("regions", {})}
