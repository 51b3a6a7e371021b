"""Resource groups: the unit a run's temporary resources live and die in."""

from __future__ import annotations

from typing import Any

from image_factory.hooks.arm import AzureResourceManagerHook
from image_factory.hooks.lookup import get_or_none


class ResourceGroupHook(AzureResourceManagerHook):
    """Create, find and delete resource groups; a retried task finds the group an earlier try made."""

    def ensure_resource_group(self, name: str, location: str, tags: dict[str, str]) -> str:
        """The group's id; an existing group is kept as it is (its tags record the try that made it)."""
        existing = get_or_none(self.resources.resource_groups.get, name)
        if existing is not None:
            return str(existing.id)
        from azure.mgmt.resource.resources.models import ResourceGroup

        created = self.resources.resource_groups.create_or_update(name, ResourceGroup(location=location, tags=tags))
        return str(created.id)

    def resource_group_exists(self, name: str) -> bool:
        return bool(self.resources.resource_groups.check_existence(name))

    def begin_delete_resource_group(self, name: str) -> bool:
        """Start deleting (a trigger waits for it); False when there was nothing to delete."""
        from azure.core.exceptions import ResourceNotFoundError

        if not self.resource_group_exists(name):  # asked first: a DELETE of nothing is not an error everywhere
            return False
        try:
            self.resources.resource_groups.begin_delete(name, polling=False)
        except ResourceNotFoundError:
            return False
        return True

    def list_resource_groups(self, tag_name: str | None = None, tag_value: str | None = None) -> list[dict[str, Any]]:
        """Groups, optionally only those carrying a tag (and value): what a sweeper looks through."""
        groups = self.resources.resource_groups.list()
        out = []
        for group in groups:
            tags = dict(group.tags or {})
            if tag_name is not None and tag_name not in tags:
                continue
            if tag_value is not None and tags.get(tag_name or "") != tag_value:
                continue
            out.append({"name": group.name, "location": group.location, "tags": tags})
        return out
