"""Wait for a resource group to be gone (a teardown's delete runs for minutes on Azure)."""

from __future__ import annotations

from typing import Any

from image_factory.triggers.polling import PollingTrigger, error_event


class ResourceGroupDeletedTrigger(PollingTrigger):
    """Until ARM answers 404 for the resource group; its provisioning state is logged when it changes."""

    def __init__(
        self,
        azure_conn_id: str,
        resource_group: str,
        timeout_seconds: float,
        poll_interval: float = 15.0,
        started_at: float | None = None,
    ) -> None:
        super().__init__(timeout_seconds=timeout_seconds, poll_interval=poll_interval, started_at=started_at)
        self.azure_conn_id = azure_conn_id
        self.resource_group = resource_group

    def kwargs(self) -> dict[str, Any]:
        return {
            "azure_conn_id": self.azure_conn_id,
            "resource_group": self.resource_group,
            "timeout_seconds": self.timeout_seconds,
            "poll_interval": self.poll_interval,
            "started_at": self.started_at,
        }

    def describe(self) -> str:
        return f"resource group {self.resource_group} to be deleted"

    async def _wait(self) -> dict[str, Any]:
        from azure.core.exceptions import ResourceNotFoundError

        from image_factory.hooks.arm import AzureResourceManagerHook

        async with AzureResourceManagerHook(self.azure_conn_id).async_clients() as clients:
            while True:
                try:
                    group = await clients.resources.resource_groups.get(self.resource_group)
                except ResourceNotFoundError:
                    return {
                        "status": "success",
                        "resource_group": self.resource_group,
                        "seconds": round(self.elapsed(), 1),
                    }
                state = str(group.properties.provisioning_state if group.properties else "Unknown")
                self.log_if_changed("state", state, "Resource group %s: %s", self.resource_group, state)
                if self.expired():
                    return error_event(
                        f"Timed out after {self.timeout_seconds:g} s waiting for {self.describe()}; "
                        f"it is still {state}.",
                        resource_group=self.resource_group,
                    )
                await self.pause()
