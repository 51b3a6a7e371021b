"""ARM resource ids: parse, build and compare them the way ARM does (case-insensitively)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM id: subscription, group, provider namespace and (type, name) pairs."""

    subscription: str
    group: str | None = None
    namespace: str | None = None
    segments: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.segments[-1][1] if self.segments else (self.group or self.subscription)

    @property
    def type(self) -> str:
        """Full type, e.g. ``Microsoft.Compute/galleries/images``."""
        if not self.namespace:
            return "Microsoft.Resources/resourceGroups" if self.group else "Microsoft.Resources/subscriptions"
        return "/".join([self.namespace, *(t for t, _ in self.segments)])

    @property
    def parent(self) -> ResourceId | None:
        if len(self.segments) > 1:
            return ResourceId(self.subscription, self.group, self.namespace, self.segments[:-1])
        if self.segments:
            return ResourceId(self.subscription, self.group)
        if self.group:
            return ResourceId(self.subscription)
        return None

    def child(self, child_type: str, name: str) -> ResourceId:
        return ResourceId(self.subscription, self.group, self.namespace, (*self.segments, (child_type, name)))

    def __str__(self) -> str:
        out = f"/subscriptions/{self.subscription}"
        if self.group is not None:
            out += f"/resourceGroups/{self.group}"
        if self.namespace:
            out += f"/providers/{self.namespace}"
            for t, n in self.segments:
                out += f"/{t}/{n}"
        return out

    @property
    def key(self) -> str:
        return str(self).lower()


def group_id(subscription: str, group: str) -> ResourceId:
    return ResourceId(subscription, group)


def resource_id(subscription: str, group: str, namespace: str, *pairs: str) -> ResourceId:
    if len(pairs) % 2:
        raise ValueError("type/name pairs expected")
    segs = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))
    return ResourceId(subscription, group, namespace, segs)


def parse(value: str) -> ResourceId:
    """Parse an ARM id. Raises ValueError when the string is not one."""
    parts = [p for p in value.strip().split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"not an ARM resource id: {value!r}")
    sub = parts[1]
    if len(parts) == 2:
        return ResourceId(sub)
    if parts[2].lower() != "resourcegroups" or len(parts) < 4:
        raise ValueError(f"not an ARM resource id: {value!r}")
    group = parts[3]
    rest = parts[4:]
    if not rest:
        return ResourceId(sub, group)
    if rest[0].lower() != "providers" or len(rest) < 4 or len(rest) % 2:
        raise ValueError(f"not an ARM resource id: {value!r}")
    namespace = rest[1]
    pairs = rest[2:]
    segs = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))
    return ResourceId(sub, group, namespace, segs)
