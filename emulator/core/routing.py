"""moto-style routes: each service lists (method, regex, operation name, handler) in its urls.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emulator.core.context import Context
from emulator.core.errors import ArmError

SUB = r"/subscriptions/(?P<subscription>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<group>[^/]+)"
NAME = r"(?P<{}>[^/]+)"


@dataclass
class ArmRequest:
    """A parsed request: what a handler needs, no HTTP objects."""

    ctx: Context
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    base_url: str
    params: dict[str, str] = field(default_factory=dict)
    operation: str = ""
    lro_failure: dict[str, str] | None = None  # set by fault injection: the LRO this call starts fails

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    def json(self) -> dict[str, Any]:
        """The body as an object, or ARM's error for a missing/invalid one."""
        if not isinstance(self.body, dict):
            raise ArmError(
                "The request content was invalid and could not be deserialized.",
                code="InvalidRequestContent",
            )
        return self.body

    def url(self, path: str, **query: str) -> str:
        q = {"api-version": self.api_version or "2024-01-01", **query}
        return self.base_url.rstrip("/") + path + "?" + "&".join(f"{k}={v}" for k, v in q.items())


@dataclass
class ArmResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ArmRequest], ArmResponse]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, operation: str) -> Callable[[Handler], Handler]:
        compiled = re.compile("^" + pattern + "/?$", re.IGNORECASE)

        def wrap(fn: Handler) -> Handler:
            self.routes.append(Route(method.upper(), compiled, operation, fn))
            return fn

        return wrap

    def include(self, other: Router) -> None:
        self.routes.extend(other.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """Find the route; raises 405 when the path exists under another method."""
        path = normalise_path(path)
        other_method = False
        for route in self.routes:
            m = route.pattern.match(path)
            if not m:
                continue
            if route.method != method.upper():
                other_method = True
                continue
            return route, {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
        if other_method:
            raise ArmError(
                f"The requested resource does not support http method '{method.upper()}'.",
                code="MethodNotAllowed",
                status=405,
            )
        return None


def normalise_path(path: str) -> str:
    """Collapse doubled slashes (scoped lock calls percent-encode the scope into the path)."""
    path = unquote(path)
    while "//" in path:
        path = path.replace("//", "/")
    return path
