"""Wait for a gallery image version's replication, region by region, with a per-region timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from image_factory.triggers.polling import PollingTrigger, error_event

if TYPE_CHECKING:
    from image_factory.hooks.arm import AsyncArmClients

COMPLETED = "Completed"
FAILED = "Failed"


def _text(value: Any, default: str = "Unknown") -> str:
    """The wire value of an SDK enum (``str()`` of one gives its Python name), or of a plain string."""
    if value is None:
        return default
    return str(getattr(value, "value", value))


def region_key(name: str) -> str:
    """ARM reports display names ("West Europe"); the factory speaks location names ("westeurope")."""
    return name.replace(" ", "").lower()


async def replication_status(
    clients: AsyncArmClients, resource_group: str, gallery: str, definition: str, version: str
) -> dict[str, Any] | None:
    """{id, provisioning_state, regions: {region: {state, progress, details}}}; None if the version is gone."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = await clients.compute.gallery_image_versions.get(
            resource_group, gallery, definition, version, expand="ReplicationStatus"
        )
    except ResourceNotFoundError:
        return None
    summary = found.replication_status.summary if found.replication_status else None
    regions = {
        region_key(item.region or ""): {
            "state": _text(item.state),
            "progress": int(item.progress or 0),
            "details": _text(item.details, ""),
        }
        for item in summary or []
    }
    return {"id": str(found.id), "provisioning_state": _text(found.provisioning_state), "regions": regions}


def _listing(regions: dict[str, dict[str, Any]], names: list[str], *, details: bool = False) -> str:
    parts = []
    for name in names:
        r = regions[name]
        why = r["details"] if details and r.get("details") else f"{r['state']} {r['progress']}%"
        parts.append(f"{name} ({why})")
    return ", ".join(parts)


class ReplicationTrigger(PollingTrigger):
    """Until every target region of the version is Completed.

    Fails at once when a region fails (the version cannot be promoted then), and when a region is not
    Completed ``region_timeout_seconds`` after ``started_at`` (every region starts replicating when
    the version is created). The success event gives each region's final state and how many seconds
    after ``started_at`` it was first seen Completed.
    """

    def __init__(
        self,
        azure_conn_id: str,
        resource_group: str,
        gallery: str,
        definition: str,
        version: str,
        region_timeout_seconds: float,
        poll_interval: float = 30.0,
        started_at: float | None = None,
    ) -> None:
        super().__init__(timeout_seconds=region_timeout_seconds, poll_interval=poll_interval, started_at=started_at)
        self.azure_conn_id = azure_conn_id
        self.resource_group = resource_group
        self.gallery = gallery
        self.definition = definition
        self.version = version
        self._completed_after: dict[str, float] = {}

    def kwargs(self) -> dict[str, Any]:
        return {
            "azure_conn_id": self.azure_conn_id,
            "resource_group": self.resource_group,
            "gallery": self.gallery,
            "definition": self.definition,
            "version": self.version,
            "region_timeout_seconds": self.timeout_seconds,
            "poll_interval": self.poll_interval,
            "started_at": self.started_at,
        }

    def describe(self) -> str:
        return f"replication of {self.gallery}/{self.definition}/{self.version}"

    async def _wait(self) -> dict[str, Any]:
        from image_factory.hooks.arm import AzureResourceManagerHook

        async with AzureResourceManagerHook(self.azure_conn_id).async_clients() as clients:
            while True:
                status = await replication_status(
                    clients, self.resource_group, self.gallery, self.definition, self.version
                )
                event = self._judge(status)
                if event is not None:
                    return event
                await self.pause()

    def _judge(self, status: dict[str, Any] | None) -> dict[str, Any] | None:
        """The event this poll ends with, or None to keep waiting."""
        if status is None:
            return error_event(
                f"Image version {self.gallery}/{self.definition}/{self.version} no longer exists "
                f"(resource group {self.resource_group})."
            )
        regions: dict[str, dict[str, Any]] = status["regions"]
        self._note(regions)
        failed = sorted(name for name, r in regions.items() if r["state"] == FAILED)
        if failed:
            return error_event(
                f"Replication of {status['id']} failed in {_listing(regions, failed, details=True)}.",
                failed_regions=failed,
                timed_out_regions=[],
                regions=regions,
            )
        if status["provisioning_state"] == FAILED:
            return error_event(
                f"Image version {status['id']} is Failed (regions: "
                f"{_listing(regions, sorted(regions)) or 'none reported'}).",
                failed_regions=[],
                timed_out_regions=[],
                regions=regions,
            )
        if (
            regions
            and status["provisioning_state"] == "Succeeded"
            and all(r["state"] == COMPLETED for r in regions.values())
        ):
            final = {
                name: {
                    "state": r["state"],
                    "progress": r["progress"],
                    "seconds": self._completed_after.get(name, round(self.elapsed(), 1)),
                }
                for name, r in regions.items()
            }
            return {"status": "success", "version_id": status["id"], "regions": final}
        if self.expired():
            late = sorted(name for name, r in regions.items() if r["state"] != COMPLETED)
            where = _listing(regions, late) if late else f"no region (version is {status['provisioning_state']})"
            return error_event(
                f"Replication of {status['id']} timed out after {self.timeout_seconds:g} s "
                f"(per-region timeout) in {where}.",
                failed_regions=[],
                timed_out_regions=late,
                regions=regions,
            )
        return None

    def _note(self, regions: dict[str, dict[str, Any]]) -> None:
        """Log each region's progress when it changes; remember when each region was first Completed."""
        for name, r in sorted(regions.items()):
            self.log_if_changed(
                name, (r["state"], r["progress"]), "Replication to %s: %s %s%%", name, r["state"], r["progress"]
            )
            if r["state"] == COMPLETED and name not in self._completed_after:
                self._completed_after[name] = round(self.elapsed(), 1)
